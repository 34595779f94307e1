"""`perpdesk exchange` as an operator runs it: a real process on a free loopback port, stopped
by a signal, started again on the same state directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tui.cli import main

ADDRESS = "0x14791697260e4c9a71f18484c9f997b308e59325"


def start(*args: str) -> tuple[subprocess.Popen[str], str, list[str]]:
    """The server in its own process; returns it, its URL and the lines it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "exchange", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    lines: list[str] = []
    url = ""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("listening on http://"):
            url = line.split()[2]
        if line.startswith("stop:"):  # the last line of the banner
            return proc, url, lines
    proc.kill()
    raise AssertionError(f"the server did not say where it listens: {lines}")


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> tuple[int, list[str]]:
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=30)
    return proc.returncode, out.splitlines()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_server_serves_stops_cleanly_and_keeps_accounts_across_a_restart(
    tmp_path: Path, sig: int
) -> None:
    state = tmp_path / "exchange"
    proc, url, lines = start("--state-dir", str(state), "--fund", f"{ADDRESS}=2500")
    try:
        assert url.startswith("http://127.0.0.1:")
        assert any(line.startswith(f"account {ADDRESS}: $2,500.00") for line in lines)
        body = {"type": "clearinghouseState", "user": ADDRESS}
        reply = httpx.post(f"{url}/info", json=body, timeout=10).json()
        assert reply["marginSummary"]["accountValue"] == "2500.0"
        injected = httpx.post(f"{url}/_perpdesk/fault", json={"fault": "http429", "count": 1})
        assert injected.json() == {"injected": "the next 1 HTTP requests get 429"}
        assert httpx.post(f"{url}/info", json={"type": "meta"}).status_code == 429
        assert httpx.post(f"{url}/info", json={"type": "meta"}).status_code == 200
    finally:
        code, out = stop(proc, sig)
    assert code == 0, out
    assert "fault: the next 1 HTTP requests get 429" in out
    assert out[-1].startswith("stopped:") and "accounts 1" in out[-1]
    saved = state / "exchange-state.json"
    assert saved.stat().st_mode & 0o777 == 0o600
    assert state.stat().st_mode & 0o777 == 0o700

    proc, url, lines = start("--state-dir", str(state), "--fund", f"{ADDRESS}=99")
    try:
        assert any("state: 1 account(s), 0 open order(s) back on the book" in x for x in lines)
        reply = httpx.post(f"{url}/info", json=body, timeout=10).json()
        assert reply["marginSummary"]["accountValue"] == "2500.0"  # kept, not re-funded
    finally:
        assert stop(proc)[0] == 0


def test_a_host_beyond_loopback_needs_an_explicit_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["exchange", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("perpdesk: --host 0.0.0.0 is not loopback") and "--allow-remote" in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("fund", "says"),
    [
        ("0x12=5", "expected ADDRESS=USD"),
        (f"{ADDRESS}=lots", "'lots' is not a number of USD"),
        (f"{ADDRESS}=-5", "must be positive"),
    ],
)
def test_a_bad_fund_argument_is_one_line(
    fund: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["exchange", "--fund", fund]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1


def test_a_port_in_use_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    proc, url, _ = start()
    try:
        port = url.rsplit(":", 1)[1]
        assert main(["exchange", "--port", port]) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"perpdesk: port {port} on 127.0.0.1 is in use; pick another with --port"
    finally:
        stop(proc)


def test_the_exchange_settings_show_in_perpdesk_config(capsys: pytest.CaptureFixture[str]) -> None:
    os.environ.pop("PERPDESK_EXCHANGE__PORT", None)
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "[exchange]" in out and "port = 8800" in out and 'host = "127.0.0.1"' in out
