"""Crash and restart: `kill -9` mid-session, start again from the same state directory."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINE = re.compile(
    r"^\S+ (?P<state>QUOTING|PAUSED|KILLED) .* bid (?P<bid>\S+) ask (?P<ask>\S+) "
    r"inv (?P<inv>\S+) USD \((?P<base>[+-][\d.]+)\) net (?P<net>\S+) USD"
)


def start(state_dir: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tui.cli",
            "--headless",
            "--speed",
            "30",
            "--state-dir",
            str(state_dir),
        ],
        cwd=state_dir.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": str(REPO),
            "PERPDESK_STRATEGY__QUOTE_SIZE_USD": "600",
            **env,
        },
    )


def read_until(proc: subprocess.Popen[str], done, limit: int = 60) -> list[re.Match[str]]:
    assert proc.stdout is not None
    seen = []
    for _ in range(limit):
        line = proc.stdout.readline()
        match = LINE.match(line)
        if match:
            seen.append(match)
            if done(match):
                return seen
    raise AssertionError(f"condition not met in {limit} status lines; last: {seen[-1:]}")


def status(state_dir: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "tui.cli", "status", "--state-dir", str(state_dir), "--json"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    ).stdout
    return json.loads(out)


def crash(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def test_after_kill_9_inventory_and_day_pnl_come_back_from_the_journal(tmp_path):
    state = tmp_path / "state"
    first = start(state)
    read_until(first, lambda m: float(m["base"]) != 0.0)
    crash(first)
    after_crash = status(state)
    assert after_crash["last_exit"] == "crash"
    assert after_crash["position_base"] != 0.0

    second = start(state)
    line = read_until(second, lambda m: True)[0]
    # the restarted exchange holds the journal's position, and the core agrees with it
    assert float(line["base"]) == round(after_crash["position_base"], 5)
    second.send_signal(signal.SIGTERM)
    out, err = second.communicate(timeout=20)
    assert second.returncode == 0, err
    assert "0 resting orders left" in out
    final = status(state)
    assert final["last_exit"] == "signal"
    assert final["resting_orders"] == 0
    assert final["sessions"] == 2


def test_a_kill_switch_trip_survives_a_crash_and_no_quote_goes_out_until_resume(tmp_path):
    state = tmp_path / "state"
    tiny_limit = {"PERPDESK_RISK__DAILY_LOSS_LIMIT_PCT": "0.0005"}  # $0.05 on $10,000
    first = start(state, **tiny_limit)
    read_until(first, lambda m: m["state"] == "KILLED", limit=120)
    crash(first)
    assert status(state)["killed"] is True

    second = start(state)  # even with the normal limit, the restart stays killed
    lines = []
    assert second.stdout is not None
    for _ in range(5):
        match = LINE.match(second.stdout.readline())
        if match:
            lines.append(match)
    second.send_signal(signal.SIGTERM)
    second.communicate(timeout=20)
    assert lines, "no status line from the restarted session"
    assert all(m["state"] == "KILLED" for m in lines)
    assert all(m["bid"] == "-" and m["ask"] == "-" for m in lines)
    assert status(state)["killed"] is True


def test_a_second_signal_during_shutdown_is_absorbed_and_the_exit_is_recorded(tmp_path):
    state = tmp_path / "state"
    proc = start(state)
    read_until(proc, lambda m: m["bid"] != "-")
    proc.send_signal(signal.SIGTERM)
    for _ in range(5):  # an impatient operator, or a supervisor that signals again
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "0 resting orders left" in out
    assert "Traceback" not in err
    final = status(state)
    assert final["last_exit"] == "signal"
    assert final["resting_orders"] == 0


def run_once(state_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args, "--state-dir", str(state_dir)],
        cwd=state_dir.parent,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
    )


def test_a_symbol_the_venue_does_not_trade_is_refused_in_one_line(tmp_path):
    done = run_once(tmp_path / "state", "--headless", PERPDESK_STRATEGY__SYMBOL="ETH-PERP")
    assert done.returncode == 2
    assert done.stderr.startswith("perpdesk: strategy.symbol = 'ETH-PERP'")
    assert len(done.stderr.splitlines()) == 1


def test_another_desks_journal_is_refused_unless_adopted(tmp_path):
    from engine.journal import Journal

    state = tmp_path / "state"
    Journal(state, venue="hyperliquid", symbol="ETH-PERP", started_ns=1).close("clean", 2)
    done = run_once(state, "--headless")
    assert done.returncode == 2
    assert "hyperliquid ETH-PERP" in done.stderr and "sim BTC-PERP" in done.stderr
    assert "--adopt-journal" in done.stderr
    assert len(done.stderr.splitlines()) == 1
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "--headless", "--adopt-journal", "--speed", "30",
         "--state-dir", str(state)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    read_until(proc, lambda m: True)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
