"""The Rich styles the Line API panes paint with, resolved once per theme from its variables."""

from __future__ import annotations

from dataclasses import dataclass

from rich.color import Color as RichColor
from rich.style import Style
from textual.color import Color


def _color(variables: dict[str, str], name: str, fallback: str = "#808080") -> Color:
    try:
        return Color.parse(variables.get(name, fallback))
    except Exception:  # a theme value Rich cannot show (e.g. "auto 60%"): use the fallback
        return Color.parse(fallback)


def _rich(color: Color) -> RichColor:
    return color.rich_color


def _luminance(color: Color) -> float:
    """WCAG relative luminance, 0 (black) to 1 (white)."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(color.r) + 0.7152 * linear(color.g) + 0.0722 * linear(color.b)


def _contrast(a: Color, b: Color) -> float:
    """WCAG contrast ratio, 1 (none) to 21 (black on white)."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@dataclass(frozen=True, slots=True)
class Palette:
    """Styles by meaning, not by colour: panes ask for `bid` or `critical`, never for red."""

    text: Style
    muted: Style
    heading: Style
    rule: Style
    bid: Style
    ask: Style
    bid_strong: Style
    ask_strong: Style
    bid_bar: Style
    ask_bar: Style
    """Depth bars: the side's colour, dimmed toward the background so numbers stay readable."""
    ours: Style
    """Our own quote, wherever it shows: reversed, so it stands out in any theme."""
    up: Style
    down: Style
    info: Style
    warning: Style
    critical: Style
    quoting_badge: Style
    paused_badge: Style
    killed_badge: Style
    banner: Style
    key: Style
    """A key in the key line."""
    gauge_track: Style
    gauge_long: Style
    gauge_short: Style
    gauge_mark: Style
    background: RichColor
    """The panes' background: the colour a reversed block shows as empty."""
    waiting_badge: Style
    warming_badge: Style
    onesided_badge: Style
    notquoting_badge: Style
    stale_badge: Style
    breaker_badge: Style
    stopping_badge: Style
    """The header's state badges beyond quoting/paused/killed, one colour each; the text on
    each is whichever of the background and `$killed-foreground` reads better on it."""

    @classmethod
    def from_variables(cls, variables: dict[str, str]) -> Palette:
        fg = _color(variables, "foreground", "#d0d0d0")
        bg = _color(variables, "surface", "#101010")
        rich_bg = _rich(bg)

        def fg_style(name: str, bold: bool = False) -> Style:
            return Style(color=_rich(_color(variables, name)), bold=bold)

        white = _color(variables, "killed-foreground", "#ffffff")

        def state_badge(name: str) -> Style:
            fill = _color(variables, name)
            ink = bg if _contrast(bg, fill) >= _contrast(white, fill) else white
            return Style(color=_rich(ink), bgcolor=_rich(fill), bold=True)

        def badge(name: str) -> Style:
            return Style(
                color=_rich(_color(variables, "killed-foreground", "#ffffff")),
                bgcolor=_rich(_color(variables, name)),
                bold=True,
            )

        return cls(
            text=Style(color=_rich(fg)),
            muted=fg_style("muted"),
            heading=Style(color=_rich(fg), bold=True),
            rule=fg_style("rule"),
            bid=fg_style("bid"),
            ask=fg_style("ask"),
            bid_strong=fg_style("bid", bold=True),
            ask_strong=fg_style("ask", bold=True),
            bid_bar=Style(color=_rich(_color(variables, "bid").blend(bg, 0.45))),
            ask_bar=Style(color=_rich(_color(variables, "ask").blend(bg, 0.45))),
            ours=Style(color=rich_bg, bgcolor=_rich(_color(variables, "ours")), bold=True),
            up=fg_style("pnl-up"),
            down=fg_style("pnl-down"),
            info=fg_style("alert-info"),
            warning=fg_style("alert-warning", bold=True),
            critical=fg_style("alert-critical", bold=True),
            quoting_badge=Style(
                color=rich_bg, bgcolor=_rich(_color(variables, "state-quoting")), bold=True
            ),
            paused_badge=Style(
                color=rich_bg, bgcolor=_rich(_color(variables, "state-paused")), bold=True
            ),
            killed_badge=badge("state-killed"),
            banner=badge("state-killed"),
            key=Style(
                color=_rich(_color(variables, "footer-key-foreground", "#ffb300")), bold=True
            ),
            gauge_track=fg_style("gauge-track"),
            gauge_long=fg_style("bid"),
            gauge_short=fg_style("ask"),
            gauge_mark=fg_style("gauge-mark", bold=True),
            background=rich_bg,
            waiting_badge=state_badge("state-waiting"),
            warming_badge=state_badge("state-warming"),
            onesided_badge=state_badge("state-onesided"),
            notquoting_badge=state_badge("state-notquoting"),
            stale_badge=state_badge("state-stale"),
            breaker_badge=state_badge("state-breaker"),
            stopping_badge=state_badge("state-stopping"),
        )
