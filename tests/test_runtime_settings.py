"""Settings changed while the desk runs: `set NAME VALUE` checked like the config file, used by
the next quotes, journaled and alerted; `save settings` writes them into the file, comments kept."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from desk import Desk
from test_session import FakeClocks, run
from test_tui import frozen_console, settle
from textual.command import CommandInput, CommandList, CommandPalette
from textual.pilot import Pilot

from engine.alerts import Severity
from engine.config import (
    RUNTIME_SETTINGS,
    ConfigError,
    Settings,
    apply_setting,
    changed_settings,
    load_settings,
    parse_setting_value,
    save_settings,
    settings_as_toml,
    tunable_settings,
)
from engine.events import SetSetting, Side
from engine.journal import iter_records
from engine.session import open_engine
from engine.snapshot import EngineState
from tui.app import PerpdeskApp
from tui.cli import main

COMMENTED = """\
# the desk's own file: these comments must survive a save
[strategy]  # how we quote
quote_size_usd = 200.0  # bigger than the guide's
base_spread_bps = 5.0   # the guide's

[risk]
# keep this one tight
daily_loss_limit_pct = 2.0
"""


def set_problem(name: str, value: str) -> str:
    with pytest.raises(ConfigError) as caught:
        apply_setting(Settings(), name, value)
    assert len(caught.value.problems) == 1
    return caught.value.problems[0]


def file_problem(tmp_path: Path, section: str, line: str) -> str:
    path = tmp_path / "perpdesk.toml"
    path.write_text(f"[{section}]\n{line}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    (problem,) = caught.value.problems
    return problem


# ---- checking a value -------------------------------------------------------------------------


def test_a_bare_or_dotted_name_sets_the_same_setting_and_nothing_else():
    before = Settings()
    for name in ("base_spread_bps", "strategy.base_spread_bps", " base_spread_bps "):
        after = apply_setting(before, name, "7")
        assert after.strategy.base_spread_bps == 7.0
        assert changed_settings(before, after) == {"strategy.base_spread_bps": 7.0}
    assert before.strategy.base_spread_bps == 5.0  # frozen: the old settings are untouched
    assert apply_setting(before, "vol_breaker_action", "stop").risk.vol_breaker_action == "stop"
    assert apply_setting(before, "loss_kill_flatten", "false").risk.loss_kill_flatten is False
    assert apply_setting(before, "fill_rate_min_quotes", "30").risk.fill_rate_min_quotes == 30


@pytest.mark.parametrize(
    ("name", "typed", "in_the_file"),
    [
        ("strategy.base_spread_bps", "-1", "base_spread_bps = -1"),
        ("strategy.base_spread_bps", "abc", 'base_spread_bps = "abc"'),
        ("strategy.base_spread_bps", "60", "base_spread_bps = 60"),  # >= max_spread_bps 50
        ("strategy.lean_factor", "1.5", "lean_factor = 1.5"),
        ("risk.vol_breaker_action", "halt", 'vol_breaker_action = "halt"'),
        ("risk.fill_rate_min_quotes", "60", "fill_rate_min_quotes = 60"),  # > window 50
        ("risk.loss_kill_flatten", "maybe", 'loss_kill_flatten = "maybe"'),
        ("risk.daily_loss_limit_pct", "inf", "daily_loss_limit_pct = inf"),
    ],
)
def test_a_bad_value_is_refused_with_the_config_files_own_line(
    tmp_path: Path, name: str, typed: str, in_the_file: str
):
    section, _, field = name.partition(".")
    assert set_problem(name, typed) == file_problem(tmp_path, section, in_the_file)
    assert set_problem(field, typed) == set_problem(name, typed)


def test_the_line_names_the_setting_the_value_and_the_rule():
    assert set_problem("base_spread_bps", "-1") == "strategy.base_spread_bps = -1: must be >= 0"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("bse_spread_bps", "bse_spread_bps: unknown setting; did you mean base_spread_bps?"),
        ("strat.base_spread_bps", "strat.base_spread_bps: unknown section; did you mean strategy?"),
        (
            "vol_window_s",
            "strategy.vol_window_s: cannot be changed while perpdesk runs; set it in the config"
            " file and restart",
        ),
        (
            "risk.rate_limit_calls",
            "risk.rate_limit_calls: cannot be changed while perpdesk runs; set it in the config"
            " file and restart",
        ),
    ],
)
def test_an_unknown_or_fixed_setting_is_refused_in_one_line(name: str, expected: str):
    assert set_problem(name, "3") == expected


def test_a_typed_value_reads_as_toml_and_anything_else_as_text():
    assert parse_setting_value("7") == 7
    assert parse_setting_value("7.5") == 7.5
    assert parse_setting_value("true") is True
    assert parse_setting_value('"stop"') == "stop"
    assert parse_setting_value("stop") == "stop"
    assert parse_setting_value("7 # note") == 7
    assert parse_setting_value("7\nx = 1") == "7\nx = 1"  # one value, never a second key


def test_every_tunable_setting_is_listed_with_its_kind_description_and_default():
    tunables = {t.name: t for t in tunable_settings()}
    assert tuple(tunables) == RUNTIME_SETTINGS
    spread = tunables["strategy.base_spread_bps"]
    assert (spread.kind, spread.default, spread.field) == ("number", 5.0, "base_spread_bps")
    assert "bps" in spread.description
    assert tunables["risk.vol_breaker_action"].kind == "widen | stop"
    assert tunables["risk.fill_rate_min_quotes"].kind == "whole number"
    assert tunables["risk.loss_kill_flatten"].kind == "true/false"
    for name in ("strategy.vol_window_s", "strategy.symbol", "risk.rate_limit_calls"):
        assert name not in tunables


# ---- the core ---------------------------------------------------------------------------------


def test_a_set_base_spread_requotes_at_once_at_the_new_total_and_alerts():
    desk = Desk()
    desk.warm_up()
    bid = desk.quote(Side.BUY)
    assert bid is not None and bid.price == 99_975.0  # 5 bps: 2.5 bps = $25 below mid

    actions = desk.command(SetSetting("strategy", "base_spread_bps", 7.0))

    assert any(a for a in actions), "the change requotes now, not at the next refresh"
    # the same market with 7 bps from the start quotes the same
    fresh = Desk(strategy={"base_spread_bps": 7.0})
    fresh.warm_up()
    spread = desk.quoter.snapshot(desk.now_ns).spread
    assert spread is not None and spread.base_bps == 7.0
    assert spread == fresh.quoter.spread_now()
    assert spread.total_bps == pytest.approx(7.0)
    for side in (Side.BUY, Side.SELL):
        ours, theirs = desk.quote(side), fresh.quote(side)
        assert ours is not None and theirs is not None and ours.price == theirs.price
    assert desk.quote(Side.BUY).price == 99_965.0  # type: ignore[union-attr]
    (alert,) = [a for a in desk.quoter.alerts if "base_spread_bps" in a.message]
    assert (alert.severity, alert.control) == (Severity.INFO, "operator")
    assert alert.message == "strategy.base_spread_bps now 7 (was 5; not saved)"


def test_derived_limits_follow_a_set_at_once():
    desk = Desk()
    desk.warm_up()
    quoter = desk.quoter
    assert (quoter.hedge_threshold_usd, quoter.position_cap_usd) == (800.0, 2_000.0)
    desk.command(SetSetting("strategy", "max_inventory_usd", 500.0))
    desk.command(SetSetting("strategy", "hedge_threshold_pct", 50.0))
    desk.command(SetSetting("risk", "position_cap_pct", 10.0))
    desk.command(SetSetting("risk", "daily_loss_limit_pct", 1.0))
    desk.command(SetSetting("risk", "rate_limit_warn_pct", 60.0))
    desk.command(SetSetting("risk", "fill_rate_min_quotes", 5))
    assert quoter.hedge_threshold_usd == 250.0
    assert quoter.position_cap_usd == 1_000.0
    assert quoter.daily_loss_limit_usd == 100.0
    assert quoter.budget.warn_pct == 60.0
    assert quoter.fill_rate.min_quotes == 5


def test_a_bigger_quote_size_sizes_the_next_quotes():
    desk = Desk()
    desk.warm_up()
    desk.command(SetSetting("strategy", "quote_size_usd", 300.0))
    bid = desk.quote(Side.BUY)
    assert bid is not None and bid.size_base == pytest.approx(0.003)  # $300 at $100,000


@pytest.mark.parametrize(
    ("command", "why"),
    [
        (SetSetting("strategy", "vol_window_s", 60.0), "cannot be changed while perpdesk runs"),
        (SetSetting("strategy", "base_spread_bps", -1.0), "must be >= 0"),
        (SetSetting("venue", "taker_fee_pct", 0.0), "cannot be changed while perpdesk runs"),
    ],
)
def test_a_set_the_core_cannot_take_is_refused_with_a_warning_and_changes_nothing(
    command: SetSetting, why: str
):
    desk = Desk()
    desk.warm_up()
    strategy, risk = desk.quoter.strategy, desk.quoter.risk
    assert desk.command(command) == []
    assert (desk.quoter.strategy, desk.quoter.risk) == (strategy, risk)
    alert = desk.quoter.alerts[-1]
    assert alert.severity is Severity.WARNING
    assert alert.message.startswith("set refused: ") and why in alert.message


def test_a_lower_loss_limit_already_crossed_kills_at_once():
    desk = Desk()
    desk.warm_up()
    desk.quoter._day_start_net_usd = 150.0  # the day is $150 down: inside 3%, past 1%
    desk.command(SetSetting("risk", "daily_loss_limit_pct", 1.0))
    assert desk.quoter.state is EngineState.KILLED
    assert "daily loss limit" in desk.quoter.kill_reason


def test_a_journaled_session_records_the_set_command(tmp_path: Path):
    clocks = FakeClocks()
    engine = open_engine(Settings(), tmp_path, wall_ns=clocks.wall, clock=clocks.monotonic)
    run(engine, clocks, 15.0)
    engine.send(SetSetting("strategy", "base_spread_bps", 7.0))
    run(engine, clocks, 1.0)
    assert engine.snapshot.spread is not None and engine.snapshot.spread.base_bps == 7.0
    engine.finish("clean")
    commands = [json.loads(data) for *_, kind, data in iter_records(tmp_path) if kind == "command"]
    assert commands == [
        {"command": "SetSetting", "section": "strategy", "name": "base_spread_bps", "value": 7.0}
    ]
    alerts = [json.loads(data) for *_, kind, data in iter_records(tmp_path) if kind == "alert"]
    assert any("strategy.base_spread_bps now 7 (was 5" in str(alert) for alert in alerts)


# ---- save settings and `perpdesk config` ------------------------------------------------------


def test_save_writes_only_the_changed_keys_and_keeps_every_comment(tmp_path: Path):
    path = tmp_path / "desk.toml"
    path.write_text(COMMENTED)
    path.chmod(0o600)
    changes = {
        "strategy.base_spread_bps": 7.0,
        "strategy.lean_factor": 0.2,
        "risk.vol_breaker_action": "stop",
    }
    assert save_settings(changes, path) == path
    text = path.read_text()
    for line in COMMENTED.splitlines():
        if not line.startswith("base_spread_bps"):
            assert line in text
    assert "base_spread_bps = 7.0   # the guide's" in text  # its comment stays with it
    assert path.stat().st_mode & 0o777 == 0o600
    settings = load_settings(path, env={})
    assert settings.strategy.base_spread_bps == 7.0
    assert settings.strategy.lean_factor == 0.2
    assert settings.strategy.quote_size_usd == 200.0
    assert settings.risk.vol_breaker_action == "stop"
    assert settings.risk.daily_loss_limit_pct == 2.0


def test_save_without_a_config_file_writes_the_one_the_next_start_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    written = save_settings({"strategy.base_spread_bps": 7.0})
    assert written.resolve() == (tmp_path / "perpdesk.toml").resolve()
    assert load_settings(None, env={}).strategy.base_spread_bps == 7.0


def test_save_refuses_in_one_line_a_file_it_cannot_write(tmp_path: Path):
    not_a_dir = tmp_path / "plain-file"
    not_a_dir.write_text("")
    with pytest.raises(ConfigError) as caught:
        save_settings({"strategy.base_spread_bps": 7.0}, not_a_dir / "perpdesk.toml")
    (problem,) = caught.value.problems
    assert problem.startswith(f"config file {not_a_dir / 'perpdesk.toml'}: cannot ")


def test_config_shows_each_changed_setting_beside_its_default_as_valid_toml():
    settings = apply_setting(Settings(), "base_spread_bps", "7")
    text = settings_as_toml(settings, defaults=True)
    (line,) = [row for row in text.splitlines() if row.startswith("base_spread_bps")]
    assert line.split("#", 1)[1].strip().startswith("default 5.0; ")
    (quote_line,) = [row for row in text.splitlines() if row.startswith("quote_size_usd")]
    assert "default" not in quote_line
    assert tomllib.loads(text)["strategy"]["base_spread_bps"] == 7.0


# ---- the console: ctrl+p ----------------------------------------------------------------------


async def palette_hits(app: PerpdeskApp, pilot: Pilot[int], typed: str) -> list[str]:
    """Open the palette (if it is not), type `typed`, wait for its list; the hits' lines."""
    if not CommandPalette.is_open(app):
        await pilot.press("ctrl+p")
        await pilot.pause()
    for word_index, word in enumerate(typed.split(" ")):
        if word_index:
            await pilot.press("space")
        await pilot.press(*word)
    commands = app.screen.query_one(CommandList)
    for _ in range(200):
        await pilot.pause(0.01)
        if commands.option_count and app.screen.query_one(CommandInput).value == typed:
            break
    return [str(commands.get_option_at_index(i).prompt) for i in range(commands.option_count)]


def notes_of(app: PerpdeskApp) -> list[tuple[str, str]]:
    """(message, severity) of every notification from now on."""
    notes: list[tuple[str, str]] = []
    real = app.notify

    def notify(message: str, **kwargs: object) -> None:
        notes.append((message, str(kwargs.get("severity", "information"))))
        real(message, **kwargs)  # type: ignore[arg-type]

    app.notify = notify  # type: ignore[method-assign]
    return notes


async def test_set_base_spread_bps_7_in_the_palette_requotes_at_7_and_alerts() -> None:
    app, _ = frozen_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        hits = await palette_hits(app, pilot, "set base_spread_bps 7")
        assert hits == ["set base_spread_bps 7\nstrategy.base_spread_bps: 5 -> 7"]
        await pilot.press("enter")
        await pilot.pause()
        await settle(app, pilot)

        assert not CommandPalette.is_open(app)
        spread = app.engine.snapshot.spread
        assert spread is not None and spread.base_bps == 7.0
        assert app.settings.strategy.base_spread_bps == 7.0
        messages = [a.message for a in app.engine.snapshot.alerts]
        assert "strategy.base_spread_bps now 7 (was 5; not saved)" in messages


async def test_a_bad_value_in_the_palette_is_one_error_line_and_changes_nothing() -> None:
    app, _ = frozen_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        notes = notes_of(app)
        hits = await palette_hits(app, pilot, "set base_spread_bps -1")
        assert hits == ["set base_spread_bps -1\nstrategy.base_spread_bps = -1: must be >= 0"]
        await pilot.press("enter")
        await pilot.pause()
        await settle(app, pilot, advance_s=0.5)

        assert notes == [("strategy.base_spread_bps = -1: must be >= 0", "error")]
        assert app.settings == Settings()
        spread = app.engine.snapshot.spread
        assert spread is not None and spread.base_bps == 5.0
        assert not any("set " in a.message for a in app.engine.snapshot.alerts)


async def test_typing_risk_in_the_palette_does_not_kill_and_lists_the_risk_settings() -> None:
    app, _ = frozen_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        hits = await palette_hits(app, pilot, "set risk")
        await settle(app, pilot)
        assert app.engine.snapshot.state is EngineState.QUOTING  # `k` typed, nobody killed
        assert hits[0].startswith("set risk.position_cap_pct\nnow 20, default 20 (number)")
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("k")  # the palette closed: `k` is the kill switch again
        await settle(app, pilot)
        assert app.engine.snapshot.state is EngineState.KILLED


async def test_the_palette_lists_every_key_by_name_then_set_and_save() -> None:
    app, _ = frozen_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+p")
        commands = app.screen.query_one(CommandList)
        for _ in range(200):
            await pilot.pause(0.01)
            if commands.option_count:
                break
        names = [
            str(commands.get_option_at_index(i).prompt).split("\n")[0]
            for i in range(commands.option_count)
        ]
        for name in ("kill", "pause", "resume", "widen", "narrow", "hedge", "flatten"):
            assert name in names
        for name in ("auto-hedge", "theme", "help", "quit"):
            assert name in names
        assert names[-2:] == ["set <setting> <value>", "save settings"]

        hits = await palette_hits(app, pilot, "widen")
        assert hits[0].startswith("widen\n")
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.engine.snapshot.manual_widen_bps == 2.0


async def test_choosing_a_setting_reopens_the_palette_with_it_typed() -> None:
    app, _ = frozen_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        hits = await palette_hits(app, pilot, "set lean")
        assert hits[0].startswith("set strategy.lean_factor\nnow 0.3, default 0.3")
        await pilot.press("enter")
        for _ in range(100):
            await pilot.pause(0.01)
            if CommandPalette.is_open(app):
                break
        typed = app.screen.query_one(CommandInput)
        assert typed.value == "set strategy.lean_factor "
        await pilot.press("0", "full_stop", "2", "enter")
        await pilot.pause()
        await settle(app, pilot)
        assert app.settings.strategy.lean_factor == 0.2
        assert app.engine.quoter.strategy.lean_factor == 0.2


async def test_save_settings_writes_the_file_in_use_and_perpdesk_config_shows_the_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "desk.toml"
    path.write_text(COMMENTED)
    path.chmod(0o600)
    app, _ = frozen_console(load_settings(path, env={}))
    app.config_path = path
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        notes = notes_of(app)
        await palette_hits(app, pilot, "set base_spread_bps 7")
        await pilot.press("enter")
        await pilot.pause()
        await settle(app, pilot)
        assert path.read_text() == COMMENTED, "a set alone writes nothing"

        hits = await palette_hits(app, pilot, "save settings")
        assert hits[0].startswith("save settings\n")
        await pilot.press("enter")
        await pilot.pause()
        await pilot.pause()

        assert notes == [(f"saved strategy.base_spread_bps to {path}", "information")]
    text = path.read_text()
    assert "# the desk's own file: these comments must survive a save" in text
    assert "base_spread_bps = 7.0   # the guide's" in text
    assert "quote_size_usd = 200.0  # bigger than the guide's" in text
    assert "# keep this one tight" in text

    capsys.readouterr()
    assert main(["config", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    (line,) = [row for row in out.splitlines() if row.startswith("base_spread_bps")]
    assert line.startswith("base_spread_bps = 7.0")
    assert "# default 5.0" in line
    assert tomllib.loads(out)["strategy"]["base_spread_bps"] == 7.0


async def test_save_settings_with_nothing_changed_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "desk.toml"
    path.write_text(COMMENTED)
    app, _ = frozen_console()
    app.config_path = path
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        notes = notes_of(app)
        app.action_save_settings()
        await pilot.pause()
    assert path.read_text() == COMMENTED
    assert notes and notes[0][0].startswith("nothing to save")
