"""The console on Hyperliquid: the same screen and keys over the local exchange, on real loopback
sockets. The header names the network and the account; k leaves no order on the server; h
hedges with an IOC that fills there; q cancels everything and exits; a refused dead man's
switch shows in the header; SIGHUP (the SSH window closed) ends the session like q."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from exchange_support import buy_at_market, info
from test_hl_venue import local_env, server_orders, wait_async

from engine.config import Settings, load_settings
from engine.exchange.app import ServerThread
from engine.journal import recover
from engine.snapshot import EngineState
from tui.app import PerpdeskApp, _connect
from tui.widgets import LinePane
from tui.widgets.status import short_address


def hl_settings(srv: ServerThread, key: Any) -> Settings:
    """Settings for the local exchange as an operator writes them (environment only here)."""
    return load_settings(None, env=local_env(srv, key))


def server_position(srv: ServerThread, key: Any) -> Decimal:
    state = info(srv, {"type": "clearinghouseState", "user": key.address})
    positions = [p["position"] for p in state["assetPositions"] if p["position"]["coin"] == "BTC"]
    return Decimal(positions[0]["szi"]) if positions else Decimal(0)


def rows_of(app: PerpdeskApp, selector: str) -> list[str]:
    return app.query_one(selector, LinePane).rows_text


async def test_the_console_quotes_on_the_local_exchange_and_every_key_acts_there(
    tmp_path: Path,
) -> None:
    import eth_account

    key = eth_account.Account.create()
    with ServerThread(fund={key.address: 100_000.0}, book_push_s=0.1) as srv:
        buy_at_market(srv, key, "0.002")  # a position the account holds before the console
        settings = hl_settings(srv, key)
        engine = await _connect(settings, tmp_path / "state", False)
        app = PerpdeskApp(settings, engine, environ={})
        async with app.run_test(size=(160, 40)) as pilot:
            assert await wait_async(lambda: len(server_orders(srv, key.address)) == 2, 20), (
                engine.snapshot.status
            )
            orders = server_orders(srv, key.address)
            assert all(o["tif"] == "Alo" and str(o["cloid"]).startswith("0x7064") for o in orders)
            app.draw_frame()
            await pilot.pause()
            header = rows_of(app, "#status")[0]
            assert f"hyperliquid · local · {short_address(key.address.lower())} · BTC" in header
            # the venue's position is the core's from the first book on
            assert engine.snapshot.inventory.position_base == pytest.approx(0.002)

            await pilot.press("h")  # hedge half: an IOC sell of 0.001 that fills on the server
            fills = await wait_async(
                lambda: any(f["side"] == "A" for f in info(srv, user_fills(key))), 10
            )
            assert fills
            hedge = [f for f in info(srv, user_fills(key)) if f["side"] == "A"]
            assert [(f["sz"], f["crossed"]) for f in hedge] == [("0.001", True)]
            tif = srv.call(lambda: srv.server.exchange.orders[int(hedge[0]["oid"])].tif)
            assert tif == "Ioc"
            assert await wait_async(
                lambda: engine.snapshot.inventory.position_base == pytest.approx(0.001), 5
            )
            assert server_position(srv, key) == Decimal(repr(engine.quoter.position_base))

            await pilot.press("k")
            assert await wait_async(lambda: server_orders(srv, key.address) == [], 5)
            assert engine.snapshot.state is EngineState.KILLED

            await pilot.press("q")
            assert await wait_async(lambda: engine.closed, 15)
        assert engine.resting_left == 0
        assert server_orders(srv, key.address) == []
        engine.finish("clean")
    rec = recover(tmp_path / "state", time.time_ns())
    assert rec.last_exit == "clean" and rec.open_orders == {}


def user_fills(key: Any) -> dict[str, str]:
    return {"type": "userFills", "user": key.address}


async def test_a_refused_dead_mans_switch_shows_off_in_the_header(tmp_path: Path) -> None:
    import eth_account

    key = eth_account.Account.create()
    # the server refuses scheduleCancel below this traded volume, as Hyperliquid does
    with ServerThread(
        fund={key.address: 100_000.0}, book_push_s=0.1, schedule_cancel_min_volume_usd=1e9
    ) as srv:
        settings = hl_settings(srv, key)
        engine = await _connect(settings, None, False)
        app = PerpdeskApp(settings, engine, environ={})
        async with app.run_test(size=(160, 40)) as pilot:
            assert await wait_async(lambda: (engine.switch or "").startswith("refused"), 10)
            assert await wait_async(lambda: len(server_orders(srv, key.address)) == 2, 20)
            app.draw_frame(force=True)
            await pilot.pause()
            assert "switch OFF" in rows_of(app, "#status")[0]
            alerts = "\n".join(rows_of(app, "#alerts"))
            assert "dead man's switch OFF" in alerts
            await pilot.press("q")
            assert await wait_async(lambda: engine.closed, 15)
        assert server_orders(srv, key.address) == []


def console_process(
    srv: ServerThread, key: Any, state_dir: Path
) -> tuple[subprocess.Popen[bytes], list[bytes]]:
    """`perpdesk` (the screen) on the local exchange in a pseudo-terminal, as over SSH."""
    env = {
        **os.environ,
        **local_env(srv, key),
        "TERM": "xterm-256color",
        "COLUMNS": "120",
        "LINES": "40",
    }
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "--state-dir", str(state_dir)],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        start_new_session=True,
    )
    os.close(follower)
    screen: list[bytes] = []

    def drain() -> None:  # the terminal must be read, or the console blocks writing to it
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen.append(chunk)
        os.close(leader)

    threading.Thread(target=drain, daemon=True).start()
    return proc, screen


def test_sighup_ends_the_console_like_q_nothing_left_on_the_server(tmp_path: Path) -> None:
    import eth_account

    key = eth_account.Account.create()
    with ServerThread(fund={key.address: 100_000.0}, book_push_s=0.1) as srv:
        proc, screen = console_process(srv, key, tmp_path)
        try:
            deadline = time.monotonic() + 30
            while len(server_orders(srv, key.address)) < 2 and time.monotonic() < deadline:
                assert proc.poll() is None, b"".join(screen)[-2000:]
                time.sleep(0.1)
            assert len(server_orders(srv, key.address)) == 2
        finally:
            proc.send_signal(signal.SIGHUP)
            code = proc.wait(timeout=30)
        shown = b"".join(screen).decode(errors="replace")
        assert code == 0, shown[-2000:]
        assert server_orders(srv, key.address) == []
        assert key.key.hex()[2:] not in shown
    status = subprocess.run(
        [sys.executable, "-m", "tui.cli", "status", "--state-dir", str(tmp_path), "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    report = json.loads(status.stdout)
    assert report["last_exit"] == "signal" and report["resting_orders"] == 0
