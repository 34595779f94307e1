"""The header line (venue, symbol, state, status, feed age, API budget, loop lag) and the
KILLED banner."""

from __future__ import annotations

from collections.abc import Hashable

from rich.segment import Segment
from rich.style import Style

from engine.snapshot import EngineState
from tui.widgets import fmt
from tui.widgets.frame import Frame
from tui.widgets.lines import LinePane, Row

_BADGES = {
    EngineState.QUOTING: " ▶ QUOTING ",
    EngineState.PAUSED: " ‖ PAUSED ",
    EngineState.KILLED: " ■ KILLED ",
}

_STREAK_BADGES = {"ONE-SIDED": " ◐ ONE-SIDED ", "NOT QUOTING": " ✕ NOT QUOTING "}


class StatusBar(LinePane):
    """One line: who we are, what state we are in and why, and whether the pipes are healthy."""

    def key(self, frame: Frame) -> Hashable:
        s = frame.snapshot
        feed = None if s.feed_age_s is None else round(s.feed_age_s, 1)
        return (
            s.state,
            s.status,
            s.symbol,
            feed,
            s.api_calls_used,
            s.api_calls_limit,
            round(frame.lag_p99_ms, 1),
            round(frame.events_per_s),
            int(frame.wall_time_s),
            round(s.pnl.terms.net_usd, 2),
            frame.stopping,
            frame.switch,
        )

    def build(self, frame: Frame, width: int, height: int) -> list[Row]:
        p = self.palette
        s = frame.snapshot
        if frame.stopping:
            badge, badge_style = " … STOPPING ", p.paused_badge
        else:
            badge = _BADGES[s.state]
            badge_style = {
                EngineState.QUOTING: p.quoting_badge,
                EngineState.PAUSED: p.paused_badge,
                EngineState.KILLED: p.killed_badge,
            }[s.state]
        status = s.status.removeprefix("killed: ")  # the badge already says KILLED
        if frame.stopping:
            status = "cancelling all orders before exit"
        elif s.state is EngineState.QUOTING:
            # A reject streak leaves the state QUOTING; the badge must not say so.
            for words, streak_badge in _STREAK_BADGES.items():
                if status.startswith(words + ": "):
                    badge, badge_style = streak_badge, p.paused_badge
                    status = status.removeprefix(words + ": ")

        # right-hand facts, most important first; the least important go when space is short
        feed_style = p.text
        if s.feed_age_s is None:
            feed = "feed -"
        elif s.feed_age_s > frame.stale_feed_s:
            feed, feed_style = f"feed {s.feed_age_s:.1f}s STALE", p.warning
        else:
            feed = f"feed {s.feed_age_s:.1f}s"
        api_share = s.api_calls_used / s.api_calls_limit * 100 if s.api_calls_limit else 0.0
        api_hot = api_share >= frame.api_warn_pct
        api = f"API {s.api_calls_used}/{s.api_calls_limit}" + (" HIGH" if api_hot else "")
        lag = f"lag p99 {frame.lag_p99_ms:.1f}ms"
        net = s.pnl.terms.net_usd
        facts: list[tuple[int, str, Style]] = [
            (0, feed, feed_style),
            (1, api, p.warning if api_hot else p.text),
            (2, lag, p.warning if frame.lag_p99_ms > 50 else p.text),
            (3, f"net {fmt.signed_usd(net)}", p.up if net >= 0 else p.down),
            (4, f"{fmt.clock(frame.wall_time_s)}Z", p.muted),
            (5, f"{frame.events_per_s:,.0f} ev/s", p.muted),
        ]
        brand = " perpdesk "
        where = f" {frame.venue} · {s.symbol} "
        # A network venue says which network and account, as a badge nobody can mistake
        # (mainnet in the kill colour), and a dead man's switch that is off; never dropped.
        desk: list[Segment] = []
        if frame.network:
            where = f" {frame.venue} · "
            network_style = p.killed_badge if frame.network == "mainnet" else p.paused_badge
            desk.append(Segment(f"{frame.network} · {short_address(frame.account)}",
                                network_style))  # fmt: skip
            desk.append(Segment(f" · {s.symbol} ", p.muted))
            if frame.switch is not None and frame.switch.startswith("refused"):
                desk.append(Segment("switch OFF ", p.warning))
        desk_len = sum(len(segment.text) for segment in desk)
        # a reject streak's reason is worth more than the clock and the event rate
        min_status = min(len(status), 60) if badge in _STREAK_BADGES.values() else 24
        # What goes when space is short, in order: event rate, the brand, the clock, net P&L;
        # feed age, API budget and loop lag always stay (the header), the status text
        # is cut last.
        while True:
            right_len = sum(len(text) + 3 for _, text, _ in facts) + 1
            left_len = len(brand) + len(where) + desk_len + len(badge) + 1
            if left_len + min_status + right_len <= width:
                break
            if len(facts) == 6:
                facts.pop()
            elif brand:
                brand = ""
            elif len(facts) > 3:
                facts.pop()
            elif min_status > 8:
                min_status = 8
            else:
                break
        room = max(0, width - left_len - right_len)
        row: Row = []
        if brand:
            row.append(Segment(brand, p.heading))
        row.append(Segment(where, p.muted))
        row.extend(desk)
        row.append(Segment(badge, badge_style))
        row.append(Segment(" " + fmt.fit(status, room), p.text))
        for _, text, style in facts:
            row.append(Segment(" │ ", p.rule))
            row.append(Segment(text, style))
        return [row]


def short_address(address: str) -> str:
    """An account address as the header shows it: `0x12ab…9f`."""
    if len(address) <= 10:
        return address
    return f"{address[:6]}…{address[-2:]}"


class KillBanner(LinePane):
    """Three rows nobody can miss: KILLED, what that means, why, and how to get out of it."""

    def key(self, frame: Frame) -> Hashable:
        return (frame.snapshot.state, frame.snapshot.status)

    def build(self, frame: Frame, width: int, height: int) -> list[Row]:
        style = self.palette.banner
        reason = frame.snapshot.status.removeprefix("killed: ")
        lines = [
            "■■■  KILLED  ■■■   all orders cancelled · quoting stopped",
            f"reason: {reason}   ·   press r to resume (asks to confirm)",
        ]
        rows: list[Row] = [[Segment(" " * width, style)] for _ in range(height)]
        top = max(0, (height - len(lines)) // 2)
        for i, line in enumerate(lines):
            if top + i < height:
                text = fmt.fit(line, width).rstrip()
                rows[top + i] = [Segment(text.center(width), style)]
        return rows
