"""The console as an operator meets it: the real `perpdesk` in tmux at 80x24, read off the
terminal. Skipped where tmux is not installed."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

PERPDESK = Path(sys.executable).with_name("perpdesk")
_NET = re.compile(r"net [+-]\$[0-9][0-9,]*\.[0-9]{2}\b")


def tmux(*args: str) -> str:
    return subprocess.run(
        ["tmux", *args], check=True, capture_output=True, text=True, timeout=10
    ).stdout


def screen_until(session: str, wanted, timeout_s: float = 30.0) -> list[str]:
    """Capture the pane until `wanted(lines)` holds; the lines of that capture."""
    deadline = time.monotonic() + timeout_s
    lines: list[str] = []
    while time.monotonic() < deadline:
        lines = tmux("capture-pane", "-p", "-t", session).splitlines()
        if wanted(lines):
            return lines
        time.sleep(0.02)
    raise AssertionError("the screen never showed it:\n" + "\n".join(lines))


def test_at_80x24_the_header_shows_net_pnl_and_a_new_alert_comes_with_its_frame(
    tmp_path: Path,
) -> None:
    session = f"perpdesk-test-{uuid.uuid4().hex[:8]}"
    env = {
        "HOME": str(tmp_path / "home"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "TERM": "xterm-256color",
        "PATH": os.environ.get("PATH", ""),
        "PERPDESK_STRATEGY__VOL_MIN_SAMPLES": "2",  # quoting after 2 s of warm-up, not 10
    }
    command = " ".join(
        [
            "env",
            "-i",
            *(f"{k}={shlex.quote(v)}" for k, v in env.items()),
            shlex.quote(str(PERPDESK)),
            "--state-dir",
            shlex.quote(str(tmp_path / "desk")),
        ]
    )
    tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24", command)
    try:
        lines = screen_until(session, lambda ls: bool(ls) and "QUOTING" in ls[0])
        header = lines[0]
        assert len(lines) == 24 and _NET.search(header), header
        assert "alerts: none" in lines[-2] or "INFO" in lines[-2]
        assert " k KILL" in lines[-1] and " q quit" in lines[-1]

        tmux("send-keys", "-t", session, "p")
        # the badge and the alert come from the same snapshot: the first capture that shows
        # PAUSED shows the alert on its line too
        lines = screen_until(session, lambda ls: bool(ls) and "PAUSED" in ls[0])
        assert "quoting paused" in lines[-2], lines[-2]
        assert _NET.search(lines[0])

        tmux("send-keys", "-t", session, "q")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            gone = subprocess.run(["tmux", "has-session", "-t", session], capture_output=True)
            if gone.returncode:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("perpdesk did not exit on q")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
