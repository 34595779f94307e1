"""Settings: the guide's defaults, file and environment precedence, errors an operator can read."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.config import (
    ConfigError,
    Settings,
    StrategySettings,
    load_settings,
    settings_as_toml,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "perpdesk.example.toml"


def write(tmp_path: Path, text: str, name: str = "perpdesk.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o600)
    return path


def problems(path: Path | None, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={} if env is None else env)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


def values_without_secrets(s: Settings) -> dict[str, dict[str, object]]:
    dumped = s.model_dump(mode="json")
    return {
        section: {k: v for k, v in fields.items() if v is not None and k != "api_key"}
        for section, fields in dumped.items()
    }


def test_defaults_are_the_guides_numbers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./perpdesk.toml here
    s = load_settings(env={})
    assert s.strategy.symbol == "BTC-PERP"
    assert s.strategy.capital_usd == 10_000
    assert s.strategy.base_spread_bps == 5
    assert s.strategy.quote_size_usd == 100
    assert s.strategy.max_inventory_usd == 1_000
    assert s.strategy.refresh_interval_s == 3
    assert s.strategy.max_spread_bps == 50
    assert s.strategy.hedge_threshold_pct == 80
    assert s.strategy.hedge_fraction == 0.5
    assert s.strategy.lean_factor == 0.3
    assert s.venue.maker_fee_pct == -0.025
    assert s.venue.taker_fee_pct == 0.025
    assert s.risk.position_cap_pct == 20
    assert s.risk.vol_breaker_pct_per_hour == 5
    assert s.risk.daily_loss_limit_pct == 3
    assert s.venue.name == "sim"
    assert s.venue.api_key is None


def test_vol_premium_default_reproduces_the_guides_worked_example() -> None:
    s = StrategySettings()
    hourly_vol_bps = 200.0  # BTC moving 2% per hour
    flat_bps = s.base_spread_bps + s.vol_premium_coeff * hourly_vol_bps
    at_max_inventory_bps = flat_bps + s.inventory_premium_bps
    assert flat_bps == pytest.approx(15.0)
    assert at_max_inventory_bps == pytest.approx(20.0)


def test_a_file_overrides_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, '[strategy]\nbase_spread_bps = 7\nsymbol = "ETH-PERP"\n[ui]\nfps = 30\n')
    s = load_settings(path, env={})
    assert s.strategy.base_spread_bps == 7
    assert s.strategy.symbol == "ETH-PERP"
    assert s.ui.fps == 30
    assert s.strategy.quote_size_usd == 100  # untouched keys keep their defaults


def test_environment_overrides_the_file_key_by_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[strategy]\nbase_spread_bps = 7\nquote_size_usd = 250\n")
    s = load_settings(path, env={"PERPDESK_STRATEGY__BASE_SPREAD_BPS": "9"})
    assert s.strategy.base_spread_bps == 9
    assert s.strategy.quote_size_usd == 250  # the file still supplies the rest of the section


def test_environment_names_are_case_insensitive() -> None:
    s = load_settings(None, env={"perpdesk_risk__vol_breaker_action": "stop"})
    assert s.risk.vol_breaker_action == "stop"


def test_init_kwargs_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERPDESK_STRATEGY__BASE_SPREAD_BPS", "9")
    monkeypatch.setenv("PERPDESK_STRATEGY__QUOTE_SIZE_USD", "300")
    s = Settings(strategy={"base_spread_bps": 8})  # type: ignore[arg-type]
    assert s.strategy.base_spread_bps == 8
    assert s.strategy.quote_size_usd == 300


def test_without_a_path_reads_perpdesk_toml_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "[strategy]\nbase_spread_bps = 6\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings(env={}).strategy.base_spread_bps == 6


def test_a_given_path_that_does_not_exist_is_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    assert problems(missing) == [f"config file {missing}: not found"]


def test_negative_base_spread_is_one_line_naming_setting_value_and_bound(tmp_path: Path) -> None:
    path = write(tmp_path, "[strategy]\nbase_spread_bps = -5\n")
    assert problems(path) == ["strategy.base_spread_bps = -5: must be >= 0"]


def test_every_bad_value_gets_its_own_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[strategy]\nquote_size_usd = 0\nvol_estimator = "garch"\n[ui]\nladder_levels = 2.5\n',
    )
    assert problems(path) == [
        "strategy.quote_size_usd = 0: must be > 0",
        "strategy.vol_estimator = \"garch\": must be 'realized' or 'ewma'",
        "ui.ladder_levels = 2.5: must be a whole number",
    ]


def test_a_bad_environment_value_names_its_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "[strategy]\nbase_spread_bps = 7\n")
    assert problems(path, env={"PERPDESK_STRATEGY__BASE_SPREAD_BPS": "-5"}) == [
        "strategy.base_spread_bps = -5: must be >= 0 (from PERPDESK_STRATEGY__BASE_SPREAD_BPS)"
    ]
    assert problems(None, env={"PERPDESK_UI__FPS": "fast"}) == [
        "ui.fps = fast: must be a number (from PERPDESK_UI__FPS)"
    ]


def test_a_section_given_as_bad_json_in_the_environment_is_one_line() -> None:
    [line] = problems(None, env={"PERPDESK_RISK": "{bad"})
    assert line.startswith("risk: not a valid JSON table")
    assert line.endswith("(from PERPDESK_RISK)")


def test_broken_toml_is_one_line_naming_the_file_and_position(tmp_path: Path) -> None:
    path = write(tmp_path, "[strategy\nbase_spread_bps = 5\n")
    [line] = problems(path)
    assert line.startswith(f"config file {path}: invalid TOML: ")
    assert "line 1" in line and "column" in line


def test_an_unknown_key_is_an_error_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path, "[strategy]\nbase_sprd_bps = 5\n")
    assert problems(path) == [
        "strategy.base_sprd_bps: unknown setting; did you mean base_spread_bps?"
    ]


def test_an_unknown_section_is_an_error_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path, "[stratgy]\nbase_spread_bps = 5\n")
    assert problems(path) == ["stratgy: unknown section; did you mean strategy?"]


def test_an_unknown_environment_key_is_an_error_naming_its_variable() -> None:
    [line] = problems(None, env={"PERPDESK_STRATEGY__BASE_SPRD_BPS": "5"})
    assert line.startswith("strategy.base_sprd_bps: unknown setting")
    assert line.endswith("(from PERPDESK_STRATEGY__BASE_SPRD_BPS)")


def test_an_unknown_key_never_echoes_its_value(tmp_path: Path) -> None:
    # A misspelt api_key still holds a secret.
    path = write(tmp_path, '[venue]\napikey = "sk-live-123"\n')
    [line] = problems(path)
    assert "sk-live-123" not in line
    assert "venue.apikey" in line


@pytest.mark.parametrize("base_bps", [50, 60])
def test_base_spread_at_or_above_the_cap_is_an_error(tmp_path: Path, base_bps: int) -> None:
    path = write(tmp_path, f"[strategy]\nbase_spread_bps = {base_bps}\nmax_spread_bps = 50\n")
    assert problems(path) == [
        f"strategy.base_spread_bps = {float(base_bps)}: must be < strategy.max_spread_bps (50.0)"
    ]


def test_fill_rate_needs_no_more_quotes_than_its_window(tmp_path: Path) -> None:
    path = write(tmp_path, "[risk]\nfill_rate_min_quotes = 60\n")
    assert problems(path) == [
        "risk.fill_rate_min_quotes = 60: must be <= risk.fill_rate_window_quotes (50)"
    ]


def test_a_secret_never_appears_in_the_printed_settings(tmp_path: Path) -> None:
    path = write(tmp_path, '[venue]\napi_key = "sk-from-file"\n')
    from_file = settings_as_toml(load_settings(path, env={}))
    from_env = settings_as_toml(load_settings(None, env={"PERPDESK_VENUE__API_KEY": "sk-env"}))
    assert "sk-from-file" not in from_file and "********" in from_file
    assert "sk-env" not in from_env and "********" in from_env
    unset = settings_as_toml(load_settings(None, env={}))
    assert "# api_key = (not set)" in unset
    # The mask is a comment, so pasting the output into a file cannot set the key to it.
    assert "api_key" not in tomllib.loads(from_file)["venue"]


def test_a_bad_secret_value_is_masked_in_the_error(tmp_path: Path) -> None:
    path = write(tmp_path, "[venue]\napi_key = 123456\n")
    assert problems(path) == ["venue.api_key = ********: must be text in quotes"]


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_file_holding_a_secret_must_be_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = write(tmp_path, '[venue]\napi_key = "sk-live"\n')
    path.chmod(0o644)
    [line] = problems(path)
    assert line.startswith(f"config file {path}: holds venue.api_key but other users can read")
    assert "chmod 600" in line and "sk-live" not in line


def test_printed_settings_parse_back_to_the_same_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[strategy]\nsymbol = "ETH \\"PERP\\""\nbase_spread_bps = 7.25\nauto_hedge = false\n'
        '[venue]\nname = "hyperliquid"\napi_url = "https://api.example"\n'
        "[sim]\nlot_size = 0.00001\nseed = 42\n",
    )
    original = load_settings(path, env={})
    text = settings_as_toml(original)
    assert values_without_secrets(original) == tomllib.loads(text)
    reloaded = load_settings(write(tmp_path, text, "again.toml"), env={})
    assert reloaded == original
    assert "lot_size = 0.00001" in text


@settings(max_examples=50, deadline=None)
@given(
    base_bps=st.floats(min_value=0, max_value=49, allow_nan=False),
    quote_usd=st.floats(min_value=1e-9, max_value=1e12, allow_nan=False),
    lean=st.floats(min_value=0, max_value=1),
    tick=st.floats(min_value=1e-12, max_value=1e6),
)
def test_any_valid_settings_round_trip_through_toml(
    base_bps: float, quote_usd: float, lean: float, tick: float
) -> None:
    original = Settings.model_validate(
        {
            "strategy": {
                "base_spread_bps": base_bps,
                "quote_size_usd": quote_usd,
                "lean_factor": lean,
            },
            "sim": {"tick_size": tick},
        }
    )
    assert tomllib.loads(settings_as_toml(original)) == values_without_secrets(original)


def test_the_example_file_lists_every_key_with_its_default() -> None:
    text = EXAMPLE.read_text()
    defaults = Settings.model_validate({})
    assert tomllib.loads(text) == values_without_secrets(defaults)
    for section, field in Settings.model_fields.items():
        assert field.annotation is not None
        assert re.search(rf"^\[{section}\]", text, re.M), section
        for key in field.annotation.model_fields:
            line = re.search(rf"^#? ?{key} = .*#", text, re.M)
            assert line, f"{section}.{key} missing or uncommented in {EXAMPLE.name}"


def test_every_setting_says_what_it_is_and_its_unit() -> None:
    for section in Settings.model_fields.values():
        assert section.annotation is not None
        for name, field in section.annotation.model_fields.items():
            assert field.description, name
            if name.endswith(("_bps", "_usd", "_pct", "_s", "_ms")):
                unit = name.rsplit("_", 1)[-1]
                words = {"bps": "bps", "usd": "USD", "pct": "%", "s": " s", "ms": "ms"}
                assert words[unit] in field.description or "N s" in field.description, name


def test_a_url_with_credentials_is_masked_by_perpdesk_config(tmp_path: Path) -> None:
    path = tmp_path / "perpdesk.toml"
    path.write_text(
        '[venue]\nname = "hyperliquid"\n'
        'api_url = "https://desk:hunter2@api.example/v1?apikey=s3cr3t&region=eu"\n'
    )
    shown = settings_as_toml(load_settings(path, env={}))
    assert "hunter2" not in shown and "s3cr3t" not in shown and "desk:" not in shown
    assert 'api_url = "https://********@api.example/v1?apikey=********&region=eu"' in shown


def test_a_bad_url_setting_from_the_environment_is_masked_in_the_error() -> None:
    env = {"PERPDESK_VENUE__SHUTDOWN_TIMEOUT_S": "https://u:hunter2@x?token=abc"}
    with pytest.raises(ConfigError) as err:
        load_settings(None, env=env)
    assert "hunter2" not in str(err.value) and "abc" not in str(err.value)
