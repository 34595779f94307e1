"""The header line (state badge, net P&L, venue and network, feed age, API budget, symbol, sim
speed, loop lag, clock, event rate, and why) and the KILLED banner.

The header is a row of slots. Each slot has a fixed width, wide enough for its widest normal
value (a slot whose value is fixed for the session, like the symbol, is as wide as that value),
and a rank. As the terminal narrows, whole slots are dropped, highest rank first, decided by
the width alone: at a given width every field starts in the same column whatever it says, and
a field is either shown whole or not at all. The free status text takes what is left and is
cut at a word, never inside a number nor between a number and its unit.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace

from rich.segment import Segment
from rich.style import Style

from engine.snapshot import Phase
from tui.widgets import fmt
from tui.widgets.frame import Frame
from tui.widgets.lines import LinePane, Row
from tui.widgets.palette import Palette

# Each badge has a glyph and a word, so colour never carries the state alone.
BADGE_WORDS: dict[Phase, str] = {
    Phase.WAITING: "○ WAITING",
    Phase.WARMING_UP: "◔ WARMING UP",
    Phase.QUOTING: "▶ QUOTING",
    Phase.ONE_SIDED: "◐ ONE-SIDED",
    Phase.NOT_QUOTING: "✕ NOT QUOTING",
    Phase.PAUSED: "‖ PAUSED",
    Phase.STALE_FEED: "⊘ STALE FEED",
    Phase.BREAKER: "↯ BREAKER",
    Phase.KILLED: "■ KILLED",
}
STOPPING_WORDS = "… STOPPING"
"""The console's own state while it cancels everything before exit (not an engine phase)."""

BADGE_WIDTH = max(len(word) for word in (*BADGE_WORDS.values(), STOPPING_WORDS)) + 2
"""The widest badge with a space either side: nothing after the badge moves when it changes."""

STATUS_RESERVE = 48
"""Cells kept for the free status text while the terminal is wide enough for everything up to
the loop lag: enough for a reject streak's side, duration and reason."""

_RULE = " │ "
_NET_WIDTH = len("net -$12,345.67")
_FEED_WIDTH = len("STALE 12.3s")
_LAG_WIDTH = len("lag p99 12.3ms")
_CLOCK_WIDTH = len("23:59:59Z")
_EVENTS_WIDTH = len("12,345 ev/s")
_SWITCH_WIDTH = len("switch OFF")
_BRAND = "perpdesk"


@dataclass(frozen=True, slots=True)
class Slot:
    """One field's place in the header."""

    name: str
    width: int
    rank: int
    """Lower ranks are kept longer as the terminal narrows; rank 0 is never dropped."""
    group: str = ""
    joiner: str = _RULE
    """What separates the slot from the one before it when both are in the same group."""
    lead: str = _RULE
    """What separates the slot from the one before it otherwise."""


@dataclass(frozen=True, slots=True)
class Placed:
    """A slot shown at one width: its column and its width there."""

    slot: Slot
    column: int
    width: int
    separator: str
    """The text drawn just before the slot (in the columns before `column`)."""


# Ranks, most important first. The status text is the filler: it keeps STATUS_RESERVE cells
# only while everything ranked above it fits, and otherwise takes what is left.
_RANKS = (
    "badge",
    "net",
    "network",
    "feed",
    "api",
    "switch",
    "symbol",
    "venue",
    "speed",
    "lag",
    "status",
    "clock",
    "events",
    "brand",
)
_RANK = {name: rank for rank, name in enumerate(_RANKS)}


def slots_for(frame: Frame) -> list[Slot]:
    """The header's slots in screen order, from what is fixed for the session only (venue,
    network, account, symbol, sim speed, API limit), never from a value that moves."""
    s = frame.snapshot
    on_network = bool(frame.network)

    def slot(name: str, width: int, **kwargs: str) -> Slot:
        return Slot(name, width, _RANK[name], **kwargs)

    slots = [slot("brand", len(_BRAND))]
    slots.append(slot("venue", len(frame.venue), group="where"))
    if on_network:
        network = slot("network", len(_network_text(frame)), group="where", joiner=" · ")
        if frame.network == "mainnet":
            network = replace(network, rank=0)  # real money: never dropped
        slots.append(network)
    else:
        slots.append(slot("speed", len(_speed_text(frame.speed)), group="where", joiner=" "))
    slots.append(slot("symbol", len(s.symbol), group="where", joiner=" · "))
    slots.append(slot("badge", BADGE_WIDTH, lead=" "))
    slots.append(slot("status", STATUS_RESERVE, lead=" "))
    slots.append(slot("net", _NET_WIDTH))
    slots.append(slot("feed", _FEED_WIDTH))
    slots.append(slot("api", len(_api_text(s.api_calls_limit, s.api_calls_limit, hot=True))))
    if on_network and frame.switch is not None:
        slots.append(slot("switch", _SWITCH_WIDTH))
    slots.append(slot("lag", _LAG_WIDTH))
    slots.append(slot("clock", _CLOCK_WIDTH))
    slots.append(slot("events", _EVENTS_WIDTH))
    return slots


def _separators(slots: Sequence[Slot]) -> list[str]:
    out = []
    for i, sl in enumerate(slots):
        if i == 0:
            out.append("")
        elif sl.group and slots[i - 1].group == sl.group:
            out.append(sl.joiner)
        else:
            out.append(sl.lead)
    return out


def _cells(slots: Sequence[Slot]) -> int:
    return sum(len(sep) + sl.width for sl, sep in zip(slots, _separators(slots), strict=True))


def layout(slots: Sequence[Slot], width: int) -> list[Placed]:
    """The slots shown at `width` and where each starts: the highest ranks are dropped until
    the rest fit; the status text then takes every cell left (or, dropped itself, what is
    left where it stands, if that is 4 cells or more)."""
    kept = list(slots)
    for victim in sorted((sl for sl in slots if sl.rank > 0), key=lambda sl: -sl.rank):
        if _cells(kept) <= width:
            break
        kept.remove(victim)
    spare = width - _cells(kept)
    status = next((sl for sl in slots if sl.name == "status"), None)
    widths = {sl.name: sl.width for sl in kept}
    if status is not None and status in kept:
        widths["status"] += max(0, spare)
    elif status is not None:
        at = slots.index(status)
        before = [sl for sl in kept if slots.index(sl) < at]
        trial = [*before, status, *kept[len(before) :]]
        room = spare - (_cells(trial) - _cells(kept) - status.width)
        if room >= 4:
            kept = trial
            widths["status"] = room
    placed = []
    column = 0
    for sl, sep in zip(kept, _separators(kept), strict=True):
        column += len(sep)
        placed.append(Placed(sl, column, widths[sl.name], sep))
        column += widths[sl.name]
    return placed


class StatusBar(LinePane):
    """One line: the state badge and why, net P&L, who and where we are, and whether the pipes
    are healthy; fixed slots, so nothing jumps when a value changes."""

    def key(self, frame: Frame) -> Hashable:
        s = frame.snapshot
        feed = None if s.feed_age_s is None else round(s.feed_age_s, 1)
        return (
            s.phase,
            s.phase_detail,
            s.symbol,
            feed,
            s.api_calls_used,
            s.api_calls_limit,
            round(frame.lag_p99_ms, 1),
            round(frame.events_per_s),
            int(frame.wall_time_s),
            round(s.pnl.terms.net_usd, 2),
            frame.stopping,
            frame.venue,
            frame.network,
            frame.account,
            frame.switch,
            frame.speed,
        )

    def build(self, frame: Frame, width: int, height: int) -> list[Row]:
        return [header_row(frame, self.palette, width)]


def header_row(frame: Frame, palette: Palette, width: int) -> Row:
    """The header at `width` cells: each shown slot's text padded to its slot."""
    row: Row = []
    for placed in layout(slots_for(frame), width):
        if placed.separator:
            style = palette.rule if placed.separator == _RULE else palette.muted
            row.append(Segment(placed.separator, style))
        text, style = _field(frame, palette, placed.slot.name, placed.width)
        if placed.slot.name == "badge":
            row.append(Segment(text.ljust(placed.width), style))  # the colour fills the slot
            continue
        row.append(Segment(text, style))
        if len(text) < placed.width:
            row.append(Segment(" " * (placed.width - len(text))))
    return row


def _field(frame: Frame, p: Palette, name: str, width: int) -> tuple[str, Style]:
    """One slot's text (at most `width` cells) and style."""
    s = frame.snapshot
    if name == "badge":
        phase = None if frame.stopping else s.phase
        words = STOPPING_WORDS if phase is None else BADGE_WORDS[phase]
        return f" {words} ", badge_style(p, phase)
    if name == "status":
        detail = "cancelling all orders before exit" if frame.stopping else s.phase_detail
        style = p.warning if s.phase in (Phase.ONE_SIDED, Phase.NOT_QUOTING) else p.text
        return fmt.fit_words(detail, width), style
    if name == "net":
        text = net_text(s.pnl.terms.net_usd)
        return text, p.down if text.startswith("net -") else p.up
    if name == "feed":
        age = s.feed_age_s
        if age is None:
            return "feed -", p.muted
        stale = s.phase is Phase.STALE_FEED or age > frame.stale_feed_s
        if stale:
            return f"STALE {fmt.age(age)}", p.warning
        return f"feed {fmt.age(age)}", p.text
    if name == "api":
        limit = s.api_calls_limit
        hot = bool(limit) and s.api_calls_used / limit * 100 >= frame.api_warn_pct
        text = _api_text(s.api_calls_used, limit, hot=hot)
        if len(text) > width:  # past the limit by a digit: the share still fits
            share = s.api_calls_used / limit * 100 if limit else 0.0
            text = f"API {share:.0f}%!"
        return text, p.warning if hot else p.text
    if name == "switch":
        return _switch_text(frame.switch, p)
    if name == "lag":
        style = p.warning if frame.lag_p99_ms > 50 else p.text
        return f"lag p99 {lag_text(frame.lag_p99_ms)}", style
    if name == "clock":
        return f"{fmt.clock(frame.wall_time_s)}Z", p.muted
    if name == "events":
        return events_text(frame.events_per_s), p.muted
    if name == "brand":
        return _BRAND, p.heading
    if name == "venue":
        return frame.venue, p.muted
    if name == "speed":
        return _speed_text(frame.speed), p.muted
    if name == "network":
        style = p.killed_badge if frame.network == "mainnet" else p.paused_badge
        return _network_text(frame), style
    if name == "symbol":
        return s.symbol, p.muted
    raise KeyError(name)


def _badge_styles(p: Palette) -> dict[Phase, Style]:
    return {
        Phase.WAITING: p.waiting_badge,
        Phase.WARMING_UP: p.warming_badge,
        Phase.QUOTING: p.quoting_badge,
        Phase.ONE_SIDED: p.onesided_badge,
        Phase.NOT_QUOTING: p.notquoting_badge,
        Phase.PAUSED: p.paused_badge,
        Phase.STALE_FEED: p.stale_badge,
        Phase.BREAKER: p.breaker_badge,
        Phase.KILLED: p.killed_badge,
    }


def badge_style(p: Palette, phase: Phase | None) -> Style:
    """The badge colour of `phase` (None: the console is stopping)."""
    return p.stopping_badge if phase is None else _badge_styles(p)[phase]


# ---- field texts: each fits its slot for every value it can take ------------------------------


def net_text(net_usd: float) -> str:
    """`net +$1,234.56` up to ±$99,999.99, then `net +$123.4k`, then `net +$1,234.5m`."""
    value = abs(net_usd)
    if round(value, 2) < 100_000:
        return f"net {fmt.signed_usd(net_usd)}"
    if round(value / 1e3, 1) < 100_000:
        body = f"{value / 1e3:,.1f}k"
    else:
        body = f"{value / 1e6:,.1f}m"
    return f"net {'-' if net_usd < 0 else '+'}${body}"


def lag_text(lag_ms: float) -> str:
    """At most 6 cells: `12.3ms`, `1234ms`, `12s`."""
    if lag_ms < 99.95:
        return f"{lag_ms:.1f}ms"
    if lag_ms < 9999.5:
        return f"{lag_ms:.0f}ms"
    return f"{min(lag_ms / 1000, 99_999):.0f}s"


def events_text(events_per_s: float) -> str:
    """At most 11 cells: `12,345 ev/s`, then `1,234k ev/s`."""
    if events_per_s < 99_999.5:
        return f"{events_per_s:,.0f} ev/s"
    return f"{min(events_per_s / 1000, 9_999):,.0f}k ev/s"


def _api_text(used: int, limit: int, *, hot: bool) -> str:
    return f"API {used}/{limit}" + ("!" if hot else "")


def _speed_text(speed: float) -> str:
    return f"×{speed:g}"


def _network_text(frame: Frame) -> str:
    return f"{frame.network} · {short_address(frame.account)}"


def _switch_text(state: str | None, p: Palette) -> tuple[str, Style]:
    """A network venue's dead man's switch: loud only when the venue refused it."""
    if state is None:
        return "", p.muted
    if state.startswith("refused"):
        return "switch OFF", p.warning
    if state == "armed":
        return "switch on", p.muted
    if state == "arming":
        return "switch …", p.muted
    return f"switch {state}"[:_SWITCH_WIDTH], p.muted


def short_address(address: str) -> str:
    """An account address as the header shows it: `0x12ab…9f`."""
    if len(address) <= 10:
        return address
    return f"{address[:6]}…{address[-2:]}"


class KillBanner(LinePane):
    """Three rows nobody can miss: KILLED, what that means, why, and how to get out of it."""

    def key(self, frame: Frame) -> Hashable:
        return (frame.snapshot.phase, frame.snapshot.phase_detail)

    def build(self, frame: Frame, width: int, height: int) -> list[Row]:
        style = self.palette.banner
        reason = frame.snapshot.phase_detail  # the kill reason while KILLED
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
