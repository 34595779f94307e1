"""The Textual console: panes drawn from the engine's latest snapshot, keys turned into commands.

The engine runs as its own task on the same event loop and never waits for the screen. The
screen redraws on its own rhythm (`ui.fps`), only when the engine has published a new
snapshot, and every pane repaints only the rows that changed. Keys become `Command`s through
`engine.send`; nothing here computes what the engine owns.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.command import CommandInput, CommandPalette
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.theme import Theme
from textual.widgets import ContentSwitcher

from engine.config import (
    ConfigError,
    Settings,
    apply_setting,
    changed_settings,
    env_override,
    resolve_setting,
    save_settings,
)
from engine.events import (
    Flatten,
    HedgeNow,
    Kill,
    Narrow,
    Resume,
    SetAutoHedge,
    SetPaused,
    SetSetting,
    Widen,
)
from engine.grid import decimals_of
from engine.live import LiveEngine, VenueUnavailable, signals_absorbed
from engine.snapshot import EngineSnapshot, EngineState
from themes import DEFAULT_THEME, THEMES, VARIABLE_DEFAULTS, next_theme
from tui.commands import DeskCommands
from tui.screens import ConfirmScreen, HelpScreen
from tui.widgets import (
    AlertLine,
    AlertsLog,
    AlertsPane,
    BlotterView,
    Frame,
    InventoryGauge,
    KeyBar,
    KeyEntry,
    KillBanner,
    Ladder,
    LinePane,
    Palette,
    PnlPane,
    QuotesPane,
    SessionCharts,
    SpreadPane,
    StatusBar,
)

# The desk's layouts, chosen by the terminal's size alone (see `layout_for`):
#   wide    (>= 116 x 32): every pane at once; the alerts under the panes, full width.
#   short   (>= 150 x 24, under 32 rows): the same four columns, the alerts under the P&L.
#   compact (anything smaller): ladder, quotes, inventory and spread, the newest alert on one
#           line; P&L and charts, the blotter and the alerts are one key away (1-4, v).
WIDE_WIDTH = 116
WIDE_HEIGHT = 32
SHORT_WIDTH = 150
SHORT_HEIGHT = 24
LAYOUTS = ("wide", "short", "compact")
VIEWS = ("desk", "pnl", "blotter", "alerts")
"""The screen's views, keys 1-4 in this order; v moves to the next."""
VIEW_TITLES = {"desk": "desk", "pnl": "P&L", "blotter": "blotter", "alerts": "alerts"}
_VIEW_IDS = {"desk": "desk", "pnl": "pnl-view", "blotter": "blotter", "alerts": "alerts-log"}


def layout_for(width: int, height: int) -> str:
    """The desk's layout at a terminal size."""
    if width >= WIDE_WIDTH and height >= WIDE_HEIGHT:
        return "wide"
    if width >= SHORT_WIDTH and height >= SHORT_HEIGHT:
        return "short"
    return "compact"


@dataclass(frozen=True, slots=True)
class Key:
    """One operator key: the binding, its word in the key line, and its line in the help."""

    id: str
    key: str
    action: str
    description: str
    short: str
    keep: int
    """Lower stays longer in a narrow key line; 0 always shows."""
    help: str
    priority: bool = False
    display: str | None = None
    bar: bool = True
    """Shown in the key line (ctrl+p is in the help only: the line has no room for it)."""


KEYS: tuple[Key, ...] = (
    Key("kill", "k", "kill", "KILL", "KILL", 0,
        "kill switch: cancel every order, stop quoting; instant, no confirmation",
        priority=True),
    Key("resume", "r", "resume", "Resume", "resume", 2,
        "leave the kill switch or a pause and quote again (asks to confirm)"),
    Key("pause", "p", "pause", "Pause", "pause", 2, "pause quoting (quotes pulled) / unpause"),
    Key("widen", "w", "widen", "Widen", "wide", 3, "add one manual widen step to the spread"),
    Key("narrow", "n", "narrow", "Narrow", "narrow", 3,
        "take one manual widen step off the spread"),
    Key("hedge", "h", "hedge", "Hedge ½", "hedge½", 2,
        "hedge half the inventory now with a taker order"),
    Key("flatten", "f", "flatten", "Flatten", "flat", 2,
        "close the whole position with a taker order (asks to confirm)"),
    Key("auto_hedge", "a", "auto_hedge", "Auto-hedge", "auto", 4,
        "automatic hedging at the threshold on / off"),
    Key("theme", "t", "next_theme", "Theme", "theme", 5,
        "next colour theme (dark, light, high contrast)"),
    Key("view", "v", "next_view", "Views", "view", 1,
        "next view: 1 desk, 2 P&L and charts, 3 blotter (fills, orders), 4 alerts"),
    Key("commands", "ctrl+p", "command_palette", "Commands", "cmds", 4,
        "command palette: every key by name, set <setting> <value>, save settings",
        display="^p", bar=False),
    Key("help", "question_mark", "help", "Help", "help", 0, "all keys (this screen)",
        display="?"),
    Key("quit", "q", "quit", "Quit", "quit", 0,
        "quit (ctrl+c too): cancel all resting orders, wait for the venue to confirm, exit"),
)  # fmt: skip


def choose_theme(setting: str, environ_value: str | None, available: set[str]) -> str:
    """TEXTUAL_THEME (a comma-separated list, first known wins) over `ui.theme`, else ours."""
    candidates = [name.strip() for name in (environ_value or "").split(",") if name.strip()]
    candidates.append(setting)
    for name in candidates:
        if name in available:
            return name
    return DEFAULT_THEME


class PerpdeskApp(App[int]):
    """The operator's console over a `LiveEngine` running in the same event loop."""

    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses elsewhere find it
    TITLE = "perpdesk"
    ENABLE_COMMAND_PALETTE = True
    COMMANDS = {DeskCommands}  # noqa: RUF012 (Textual's own declaration is a set)
    AUTO_FOCUS = None
    BINDINGS: ClassVar[list[BindingType]] = (
        [
            Binding(
                k.key,
                k.action,
                k.description,
                id=k.id,
                priority=k.priority,
                tooltip=k.help,
                key_display=k.display,
            )
            for k in KEYS
        ]
        + [
            # ctrl+c is what a terminal user presses to leave: it quits like q (cancel everything,
            # wait for the venue, exit), never leaving orders behind
            Binding("ctrl+c", "quit", "Quit", id="quit.ctrl_c", show=False, priority=True),
        ]
        + [
            Binding(
                str(i), f"show_view('{view}')", VIEW_TITLES[view], id=f"view.{view}", show=False
            )
            for i, view in enumerate(VIEWS, start=1)
        ]
    )

    def __init__(
        self,
        settings: Settings,
        engine: LiveEngine | None = None,
        *,
        standalone: bool = False,
        environ: Mapping[str, str] | None = None,
        state_dir: Path | None = None,
        config_path: Path | None = None,
    ) -> None:
        super().__init__()
        self._state_dir = state_dir
        """The journal's directory: the blotter and the alerts view read the whole day there."""
        self.config_path = config_path
        """The config file the settings came from (None: none); `save settings` writes to it."""
        self._settings_saved = settings
        """What `save settings` compares with: the settings at start, or at the last save."""
        self.desk_layout = "wide"
        self.current_view = "desk"
        self.settings = settings
        self.engine = engine if engine is not None else LiveEngine(settings)
        self.standalone = standalone
        """The app owns the process: SIGINT/SIGTERM/SIGHUP quit cleanly, and the GC is tuned."""
        self.quit_by_signal = False
        """True when a signal (SIGHUP: the SSH session dropped) ended the app."""
        for theme in THEMES:
            self.register_theme(theme)
        env = os.environ if environ is None else environ
        wanted = env.get("TEXTUAL_THEME")
        self.theme = choose_theme(settings.ui.theme, wanted, set(self.available_themes))
        self._theme_note: str | None = None
        if self.theme != settings.ui.theme and not wanted:
            self._theme_note = f"theme {settings.ui.theme!r} is not known; using {self.theme}"
        self.palette = Palette.from_variables(self._variables_of(self.current_theme))
        instrument = self.engine.market.instrument
        self._price_decimals = decimals_of(instrument.tick_size)
        self._size_decimals = decimals_of(instrument.lot_size)
        self._base_asset = instrument.symbol.split("-")[0]
        self._panes: list[LinePane] = []
        self._tables: list[BlotterView | AlertsLog] = []
        self._shown: EngineSnapshot | None = None
        self._killed = False
        self._quitting = False
        self.frames_drawn = 0

    # ---- look ---------------------------------------------------------------------------------

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(VARIABLE_DEFAULTS)

    def _variables_of(self, theme: Theme) -> dict[str, str]:
        return {
            **VARIABLE_DEFAULTS,
            **theme.to_color_system().generate(),
            **theme.variables,
        }

    def _on_theme_changed(self, theme: Theme) -> None:
        self.palette = Palette.from_variables(self._variables_of(theme))
        with self.batch_update():
            for pane in self._panes:
                pane.restyle(self.palette)
            for table in self._tables:
                table.restyle(self.palette)

    def compose(self) -> ComposeResult:
        p = self.palette
        status = StatusBar(p, id="status")
        banner = KillBanner(p, id="banner")
        ladder = Ladder(p, title="Order book", id="ladder")
        quotes = QuotesPane(p, title="Quotes", id="quotes")
        inventory = InventoryGauge(p, title="Inventory", id="inventory")
        spread = SpreadPane(p, title="Spread, bps of mid", id="spread")
        pnl = PnlPane(p, title="P&L, USD", id="pnl")
        alerts = AlertsPane(p, title="Risk alerts, newest first", id="alerts")
        side_alerts = AlertsPane(p, title="Risk alerts, newest first", id="alerts-side")
        full_pnl = PnlPane(p, title="P&L, USD", id="pnl-full")
        charts = SessionCharts(p, title="The session", id="charts")
        pnl_alerts = AlertsPane(p, title="Risk alerts, newest first", id="alerts-pnl")
        alert_line = AlertLine(p, id="alert-line")
        blotter = BlotterView(self._state_dir, p, id="blotter")
        blotter.price_decimals, blotter.size_decimals = self._price_decimals, self._size_decimals
        alerts_log = AlertsLog(self._state_dir, p, id="alerts-log")
        self._tables = [blotter, alerts_log]
        keys = KeyBar(
            [
                KeyEntry(k.display or k.key, k.description, k.short, k.keep, k.id == "kill")
                for k in KEYS
                if k.bar
            ],
            p,
            id="keys",
        )
        self._panes = [
            status, banner, ladder, quotes, inventory, spread, pnl, alerts, side_alerts,
            full_pnl, charts, pnl_alerts, alert_line, keys,
        ]  # fmt: skip
        yield status
        yield banner
        with ContentSwitcher(id="views", initial="desk"):
            with Vertical(id="desk"):
                with Horizontal(id="body"):
                    yield ladder
                    with Vertical(id="middle"):
                        yield quotes
                        yield inventory
                        yield spread
                    with Vertical(id="right"):
                        yield pnl
                        yield side_alerts
                yield alerts
            with Horizontal(id="pnl-view"):
                with Vertical(id="pnl-left"):
                    yield full_pnl
                    yield pnl_alerts
                yield charts
            yield blotter
            yield alerts_log
        yield alert_line
        yield keys

    def on_mount(self) -> None:
        self.theme_changed_signal.subscribe(self, self._on_theme_changed)
        self._apply_layout(self.size.width, self.size.height)
        self.engine.start()
        self.set_interval(1.0 / self.settings.ui.fps, self.draw_frame)
        self.draw_frame()
        if self._theme_note:
            self.notify(self._theme_note, severity="warning")
        if self.standalone:
            # Python's cyclic GC pauses the whole loop (engine included) for 20-50 ms when it
            # scans the oldest generation, which holds Textual's DOM, styles and caches. Once
            # the screen is built, move what exists into the permanent generation: later full
            # collections scan only what was allocated since (bench/ui.py: max lag 56 -> 12 ms).
            self.set_timer(1.0, gc.freeze)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, self._quit_from_signal)

    def _handle_exception(self, error: Exception) -> None:
        # Textual ends the app on an error in a handler and `run` returns normally: say so to
        # the engine before the unmount stops it, so the journal records a crash, not a quit.
        self.engine.exit_kind = "crash"
        super()._handle_exception(error)

    def _quit_from_signal(self) -> None:
        if self._quitting:  # a second signal while cancelling: absorbed, the first one counts
            return
        self.quit_by_signal = True
        self.engine.exit_kind = "signal"
        self.call_later(self.action_quit)

    async def on_unmount(self) -> None:
        # However the app ends, no order of ours stays at the venue.
        if not self.engine.closed:
            await self.engine.stop()

    def on_resize(self, event: Resize) -> None:
        self._apply_layout(event.size.width, event.size.height)

    def _apply_layout(self, width: int, height: int) -> None:
        self.desk_layout = layout_for(width, height)
        for name in LAYOUTS:
            self.set_class(name == self.desk_layout, f"-{name}")
        self._show_alert_line()

    def _show_alert_line(self) -> None:
        # The newest alert on one line wherever no alerts pane is on screen.
        view = self.current_view
        hidden = view in ("alerts", "pnl") or (view == "desk" and self.desk_layout != "compact")
        self.set_class(not hidden, "-alert-line")

    # ---- views --------------------------------------------------------------------------------

    def action_show_view(self, view: str) -> None:
        if view not in VIEWS or view == self.current_view:
            return
        self.current_view = view
        self.query_one("#views", ContentSwitcher).current = _VIEW_IDS[view]
        self._show_alert_line()
        if view in ("blotter", "alerts"):  # its table takes the arrows and page keys
            self.query_one(f"#{_VIEW_IDS[view]}", BlotterView | AlertsLog).table.focus()
        else:
            self.set_focus(None)
        self.draw_frame(force=True)

    def action_next_view(self) -> None:
        self.action_show_view(VIEWS[(VIEWS.index(self.current_view) + 1) % len(VIEWS)])

    # ---- the frame ----------------------------------------------------------------------------

    def draw_frame(self, force: bool = False) -> None:
        """Redraw from the engine's latest snapshot; nothing to do if it has not changed."""
        engine = self.engine
        snapshot = engine.snapshot
        if snapshot is self._shown and not force:
            return
        self._shown = snapshot
        frame = self._frame_of(snapshot)
        killed = snapshot.state is EngineState.KILLED
        if killed != self._killed:
            self._killed = killed
            self.set_class(killed, "-killed")
        with self.batch_update():
            for pane in self._panes:
                pane.show(frame)
        self.frames_drawn += 1

    def _frame_of(self, snapshot: EngineSnapshot) -> Frame:
        engine = self.engine
        return Frame(
            snapshot=snapshot,
            venue=engine.venue_name,
            wall_time_s=engine.wall_time_s(snapshot.ts_ns),
            epoch_s=engine.epoch_s,
            sim0_ns=engine.sim0_ns,
            speed=engine.speed,
            lag_p99_ms=engine.lag_p99_ms,
            events_per_s=engine.events_per_s,
            stale_feed_s=self.settings.risk.stale_feed_s,
            api_warn_pct=self.settings.risk.rate_limit_warn_pct,
            price_decimals=self._price_decimals,
            size_decimals=self._size_decimals,
            base_asset=self._base_asset,
            stopping=self._quitting,
            network=engine.venue_network,
            account=engine.venue_account,
            switch=engine.switch,
            history=engine.history.view(),
        )

    # ---- keys -> commands ---------------------------------------------------------------------

    def action_kill(self) -> None:
        self.engine.send(Kill("operator kill switch (k)"))

    def action_resume(self) -> None:
        snapshot = self.engine.snapshot
        if snapshot.state is EngineState.QUOTING:
            self.notify("already quoting", timeout=2)
            return
        body = (
            f"State: {snapshot.state.value} ({snapshot.status}).\n"
            "Quote again at the current settings?"
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self.engine.send(Resume())

        self.push_screen(ConfirmScreen("Resume quoting?", body), answered)

    def action_pause(self) -> None:
        self.engine.send(SetPaused(None))

    def action_widen(self) -> None:
        self.engine.send(Widen())

    def action_narrow(self) -> None:
        self.engine.send(Narrow())

    def action_hedge(self) -> None:
        self.engine.send(HedgeNow())

    def action_flatten(self) -> None:
        # The question quotes the position the operator is looking at when the key is pressed.
        inv = self.engine.snapshot.inventory
        if inv.position_base == 0:
            self.notify("nothing to flatten: the position is zero", timeout=2)
            return
        position = f"{inv.position_base:+.{self._size_decimals}f} {self._base_asset}"
        body = (
            f"Close the whole position with a taker order: {position}"
            f" (about {inv.inventory_usd:+,.2f} USD), paying the taker fee."
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self.engine.send(Flatten())

        self.push_screen(ConfirmScreen("Flatten the position?", body), answered)

    def action_auto_hedge(self) -> None:
        self.engine.send(SetAutoHedge(None))

    def action_next_theme(self) -> None:
        self.theme = next_theme(self.theme)
        self.notify(f"theme: {self.theme}", timeout=2)

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen([(k.display or k.key, k.description, k.help) for k in KEYS]))

    async def action_quit(self) -> None:
        """Cancel every order, wait until the venue has confirmed, then exit."""
        if self._quitting:
            return
        self._quitting = True
        self.draw_frame(force=True)
        left = await self.engine.stop()
        self.exit(0 if left == 0 else 1)

    # ---- the command palette (ctrl+p): tui/commands.py ----------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # In the palette `k` is a letter of what is typed (`set risk.`), not the kill switch:
        # the palette has its own `kill`, and escape gives the key back.
        return not (action == "kill" and CommandPalette.is_open(self))

    def set_setting(self, name: str, value: str) -> bool:
        """`set NAME VALUE`: checked as the config file would be, then sent to the engine; a
        bad value is refused in one line and changes nothing."""
        try:
            settings = apply_setting(self.settings, name, value)
            section, field = resolve_setting(name)
        except ConfigError as err:
            self.notify("; ".join(err.problems), severity="error", markup=False)
            return False
        self.settings = settings
        new = getattr(getattr(settings, section), field)
        self.engine.send(SetSetting(section, field, new))
        return True

    def prompt_setting(self, name: str = "") -> None:
        """Open the palette again with `set NAME ` typed, for the operator to go on."""
        palette = CommandPalette(id="--command-palette")

        def type_it() -> None:
            field = palette.query_one(CommandInput)
            field.value = f"set {name} " if name else "set "
            field.cursor_position = len(field.value)

        self.push_screen(palette)
        palette.call_after_refresh(type_it)

    def action_save_settings(self) -> None:
        """Write the settings changed here into the config file, its comments kept."""
        changes = changed_settings(self._settings_saved, self.settings)
        if not changes:
            self.notify("nothing to save: no setting changed since the start or the last save")
            return
        try:
            path = save_settings(changes, self.config_path)
        except ConfigError as err:
            self.notify("; ".join(err.problems), severity="error", markup=False)
            return
        self._settings_saved = self.settings
        self.config_path = path
        self.notify(f"saved {', '.join(changes)} to {path}", markup=False)
        for dotted in changes:
            env_var = env_override(dotted)
            if env_var is not None:
                self.notify(
                    f"{dotted}: {env_var} is set and wins over the file at the next start",
                    severity="warning",
                    markup=False,
                )


def run_console(
    settings: Settings,
    state_dir: Path | None = None,
    *,
    adopt_journal: bool = False,
    config_path: Path | None = None,
) -> int:
    """Run the console until the operator quits; 0 when no order was left at the venue.

    With a state directory the session is journaled and carries on from the last one. A
    network venue is connected inside the console's event loop (its feeds and sender live
    there), then journaled; the embedded exchange is built before the loop starts.
    """
    from engine.session import JournaledEngine, open_engine

    network = settings.venue.name != "sim"
    engine: LiveEngine | None = None
    try:
        if not network:
            engine = (
                LiveEngine(settings)
                if state_dir is None
                else open_engine(settings, state_dir, adopt_journal=adopt_journal)
            )
    except VenueUnavailable as err:
        print(f"perpdesk: {err}", file=sys.stderr)
        return 2

    async def session() -> int | None:
        nonlocal engine
        if engine is None:
            engine = await _connect(settings, state_dir, adopt_journal)
        app = PerpdeskApp(
            settings, engine, standalone=True, state_dir=state_dir, config_path=config_path
        )
        exit_kind = "crash"  # unless the app returns normally
        try:
            code = await app.run_async(mouse=False)
            if app.return_code:  # an error inside the app ended it
                exit_kind, code = "crash", app.return_code
            else:
                exit_kind = "signal" if app.quit_by_signal else "clean"
            return code
        finally:
            engine.exit_kind = exit_kind
            # However the app ended, nothing of ours stays at the venue; a network venue's
            # cancels need this loop, so the shutdown finishes here, signals absorbed.
            with signals_absorbed():
                if not engine.closed:
                    await engine.stop()
                if isinstance(engine, JournaledEngine):
                    engine.finish(exit_kind)

    try:
        code = asyncio.run(session())
    except VenueUnavailable as err:
        print(f"perpdesk: {err}", file=sys.stderr)
        return 2
    finally:
        with signals_absorbed():  # the loop is gone: a signal now must not cut this short
            if isinstance(engine, JournaledEngine) and engine.close_report is None:
                engine.finish("crash")
            elif engine is not None and not engine.closed:
                engine.close()
    assert engine is not None
    print(f"perpdesk: {engine.shutdown_report()}", file=sys.stderr)
    if isinstance(engine, JournaledEngine):
        for note in engine.exit_notes():
            print(f"perpdesk: {note}", file=sys.stderr)
    if engine.resting_left:
        return 1
    return code if isinstance(code, int) else 0


async def _connect(settings: Settings, state_dir: Path | None, adopt_journal: bool) -> LiveEngine:
    """Connect the network venue and build the engine on it (journaled with a state dir)."""
    from engine.session import open_network_engine
    from engine.venues.live import open_hyperliquid

    if state_dir is not None:
        return await open_network_engine(settings, state_dir, adopt_journal=adopt_journal)
    venue = await open_hyperliquid(settings)
    try:
        return LiveEngine(settings, venue=venue)
    except BaseException:
        await venue.close()
        raise
