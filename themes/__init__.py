"""The console's colour themes: perpdesk-dark, perpdesk-light, perpdesk-contrast, as Textual Themes.

Each theme sets Textual's base colours plus the console's own variables (`$bid`, `$ask`,
`$pnl-up`, `$pnl-down`, `$alert-*`, ...). `VARIABLE_DEFAULTS` gives every variable a value so
that any theme (a built-in Textual one too) can render the console. Colour never carries a
state alone: every pane also writes the word or marker (BID/ASK, ▲/▼, KILLED). The header's
state badge has one colour per phase (`$state-quoting`, `$state-warming`, `$state-onesided`,
`$state-stale`, ...), each with its own glyph and word.

`perpdesk-contrast` uses only colours of the xterm 256-colour cube (#00/#5f/#87/#af/#d7/#ff
components and the grey ramp), so it looks the same over an SSH session that has 256 colours
and no truecolor.
"""

from __future__ import annotations

from textual.theme import Theme

VARIABLE_DEFAULTS: dict[str, str] = {
    "bid": "#26a69a",
    "ask": "#ef5350",
    "ours": "#ffb300",
    "pnl-up": "#26a69a",
    "pnl-down": "#ef5350",
    "alert-info": "#8fa1b3",
    "alert-warning": "#ffb300",
    "alert-critical": "#ff4d4f",
    "state-quoting": "#26a69a",
    "state-paused": "#ffb300",
    "state-killed": "#ff4d4f",
    "state-waiting": "#7d8590",
    "state-warming": "#4c9be8",
    "state-onesided": "#f0883e",
    "state-notquoting": "#db61a2",
    "state-stale": "#a371f7",
    "state-breaker": "#39c5cf",
    "state-stopping": "#c9d1d9",
    "killed-foreground": "#ffffff",
    "gauge-track": "#3a4452",
    "gauge-mark": "#ffb300",
    "muted": "#7d8590",
    "rule": "#30363d",
}
"""Every console variable with a default; themes override what they need."""

PERPDESK_DARK = Theme(
    name="perpdesk-dark",
    primary="#4c9be8",
    secondary="#2f6fb0",
    accent="#ffb300",
    warning="#ffb300",
    error="#ff4d4f",
    success="#26a69a",
    foreground="#d6dde6",
    background="#0b0f14",
    surface="#11161d",
    panel="#18202a",
    dark=True,
    variables={
        "bid": "#2ebd85",
        "ask": "#f6465d",
        "ours": "#ffb300",
        "pnl-up": "#2ebd85",
        "pnl-down": "#f6465d",
        "alert-info": "#8fa1b3",
        "alert-warning": "#ffb300",
        "alert-critical": "#ff4d4f",
        "state-quoting": "#2ebd85",
        "state-paused": "#ffb300",
        "state-killed": "#d32f2f",
        "state-waiting": "#7d8590",
        "state-warming": "#4c9be8",
        "state-onesided": "#f0883e",
        "state-notquoting": "#db61a2",
        "state-stale": "#a371f7",
        "state-breaker": "#39c5cf",
        "state-stopping": "#c9d1d9",
        "killed-foreground": "#ffffff",
        "gauge-track": "#3d4754",
        "gauge-mark": "#ffb300",
        "muted": "#7d8590",
        "rule": "#2f3a47",
        "footer-key-foreground": "#ffb300",
    },
)

PERPDESK_LIGHT = Theme(
    name="perpdesk-light",
    primary="#0a5cad",
    secondary="#2f6fb0",
    accent="#9a6700",
    warning="#9a6700",
    error="#c62828",
    success="#0f7b4f",
    foreground="#1f2328",
    background="#eef1f5",
    surface="#fbfcfd",
    panel="#e3e8ee",
    dark=False,
    variables={
        "bid": "#0f7b4f",
        "ask": "#c62828",
        "ours": "#9a4d00",
        "pnl-up": "#0f7b4f",
        "pnl-down": "#c62828",
        "alert-info": "#4a5763",
        "alert-warning": "#9a6700",
        "alert-critical": "#c62828",
        "state-quoting": "#0f7b4f",
        "state-paused": "#9a6700",
        "state-killed": "#c62828",
        "state-waiting": "#5b6672",
        "state-warming": "#0a5cad",
        "state-onesided": "#bc4c00",
        "state-notquoting": "#a3125f",
        "state-stale": "#6f42c1",
        "state-breaker": "#0e6f7a",
        "state-stopping": "#32383f",
        "killed-foreground": "#ffffff",
        "gauge-track": "#d5dbe2",
        "gauge-mark": "#9a4d00",
        "muted": "#5b6672",
        "rule": "#d0d7de",
        "footer-key-foreground": "#0a5cad",
    },
)

PERPDESK_CONTRAST = Theme(
    name="perpdesk-contrast",
    primary="#00afff",
    secondary="#0087d7",
    accent="#ffff00",
    warning="#ffff00",
    error="#ff0000",
    success="#00ff00",
    foreground="#ffffff",
    background="#000000",
    surface="#000000",
    panel="#1c1c1c",
    boost="#262626",
    dark=True,
    luminosity_spread=0.2,
    text_alpha=1.0,
    variables={
        "bid": "#00ff5f",
        "ask": "#ff5f5f",
        "ours": "#ffff00",
        "pnl-up": "#00ff5f",
        "pnl-down": "#ff5f5f",
        "alert-info": "#d7d7d7",
        "alert-warning": "#ffff00",
        "alert-critical": "#ff0000",
        "state-quoting": "#00ff5f",
        "state-paused": "#ffff00",
        "state-killed": "#d70000",
        "state-waiting": "#8a8a8a",
        "state-warming": "#00afff",
        "state-onesided": "#ff8700",
        "state-notquoting": "#ff5fd7",
        "state-stale": "#af87ff",
        "state-breaker": "#00ffff",
        "state-stopping": "#d0d0d0",
        "killed-foreground": "#ffffff",
        "gauge-track": "#444444",
        "gauge-mark": "#ffff00",
        "muted": "#bcbcbc",
        "rule": "#585858",
        "border": "#d0d0d0",
        "footer-key-foreground": "#ffff00",
        "footer-description-foreground": "#ffffff",
    },
)

THEMES: tuple[Theme, ...] = (PERPDESK_DARK, PERPDESK_LIGHT, PERPDESK_CONTRAST)
THEME_NAMES: tuple[str, ...] = tuple(theme.name for theme in THEMES)
DEFAULT_THEME = PERPDESK_DARK.name


def next_theme(current: str) -> str:
    """The theme after `current` in the cycle (the first one if `current` is not ours)."""
    if current not in THEME_NAMES:
        return THEME_NAMES[0]
    return THEME_NAMES[(THEME_NAMES.index(current) + 1) % len(THEME_NAMES)]
