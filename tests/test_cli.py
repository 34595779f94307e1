"""The `perpdesk` command line: `config` prints settings; bad settings exit 2, no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tui.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def clean_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from an empty directory with no PERPDESK_* variables, whatever the shell has."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.upper().startswith("PERPDESK_"):
            monkeypatch.delenv(name)


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("PERPDESK_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_config_prints_the_default_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "[strategy]" in out
    assert "base_spread_bps = 5.0" in out
    assert tomllib.loads(out)["risk"]["daily_loss_limit_pct"] == 3.0


def test_config_reads_the_file_given_before_or_after_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "desk.toml"
    path.write_text("[strategy]\nbase_spread_bps = 7\n")
    for argv in (["--config", str(path), "config"], ["config", "--config", str(path)]):
        assert main(argv) == 0
        assert "base_spread_bps = 7.0" in capsys.readouterr().out


def test_config_reads_perpdesk_toml_in_the_working_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "perpdesk.toml").write_text("[ui]\nfps = 30\n")
    assert main(["config"]) == 0
    assert "fps = 30.0" in capsys.readouterr().out


def test_environment_overrides_show_in_config(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PERPDESK_STRATEGY__BASE_SPREAD_BPS", "8")
    assert main(["config"]) == 0
    assert "base_spread_bps = 8.0" in capsys.readouterr().out


def test_bad_settings_exit_2_with_one_prefixed_line_per_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[strategy]\nbase_spread_bps = -5\nquote_size_usd = 0\n")
    assert main(["--config", str(path), "config"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "perpdesk: strategy.base_spread_bps = -5: must be >= 0",
        "perpdesk: strategy.quote_size_usd = 0: must be > 0",
    ]


def test_a_missing_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "nope.toml"), "config"]) == 2
    assert capsys.readouterr().err == f"perpdesk: config file {tmp_path / 'nope.toml'}: not found\n"


def test_hyperliquid_without_credentials_is_one_line_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PERPDESK_VENUE__NAME", "hyperliquid")
    for argv in ([], ["--headless"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("perpdesk: venue.account_address is not set")
        assert err.count("\n") == 1


def test_headless_runs_prints_status_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "--headless", "--speed", "20"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    lines = [proc.stdout.readline() for _ in range(4)]
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert lines[0].startswith("perpdesk headless: sim BTC-PERP")
    assert all(" mid " in line and " net " in line for line in lines[1:])
    assert "0 resting orders left at the venue" in out
    assert "Traceback" not in err


def test_usage_errors_return_2_instead_of_raising(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--no-such-flag"]) == 2
    assert "perpdesk: error:" in capsys.readouterr().err
    assert main(["--help"]) == 0


def test_config_as_a_real_process_exits_0(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "config")
    assert done.returncode == 0, done.stderr
    assert "[strategy]" in done.stdout
    assert "base_spread_bps = 5.0" in done.stdout


def test_a_broken_file_as_a_real_process_exits_2_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "perpdesk.toml").write_text("[strategy\nbase_spread_bps = 5\n")
    done = run_cli(tmp_path, "config")
    assert done.returncode == 2
    assert done.stderr.startswith("perpdesk: config file perpdesk.toml: invalid TOML: ")
    assert len(done.stderr.splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_the_cli_does_not_import_textual(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys, tui.cli; print('textual' in sys.modules)"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "False", done.stderr


# ---- papercuts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["inf", "nan", "abc", "0", "-1"])
def test_a_speed_that_is_not_a_positive_finite_number_is_refused_in_words(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--speed", bad, "config"]) == 2
    err = capsys.readouterr().err
    assert f"argument --speed: must be a number > 0, got '{bad}'" in err
    assert "_positive_float" not in err


def test_the_global_speed_shows_in_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--speed", "10", "config"]) == 0
    settings = tomllib.loads(capsys.readouterr().out)
    assert settings["sim"]["speed"] == 10.0


def test_status_reads_the_state_dir_given_before_the_command(tmp_path: Path) -> None:
    from engine.journal import Journal

    desk = tmp_path / "desk"
    Journal(desk, venue="sim", symbol="BTC-PERP", started_ns=1).close("clean", 2)
    done = run_cli(tmp_path, "--state-dir", str(desk), "status")
    assert done.returncode == 0, done.stderr
    assert f"journal          {desk}/journal.sqlite" in done.stdout
    assert "position         +0.00000 BTC" in done.stdout and "+$0.00" in done.stdout
    assert "$+" not in done.stdout


def test_config_into_a_pipe_that_closes_early_is_no_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("PERPDESK_")}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        f"{sys.executable} -m tui.cli config | head -1",
        shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.stdout.startswith("# effective settings")
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


def test_an_environment_variable_naming_no_section_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PERPDESK_STRATEGYY__BASE_SPREAD_BPS", "7")
    assert main(["config"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("perpdesk: PERPDESK_STRATEGYY__BASE_SPREAD_BPS: there is no settings")
    assert err.count("\n") == 1
