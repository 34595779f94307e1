"""`perpdesk exchange`: run the local exchange until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import re
import sys
from collections.abc import Callable

from engine.config import ExchangeSettings
from engine.exchange.app import FAULTS, LocalExchange
from engine.exchange.persist import StateError

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


class UsageError(ValueError):
    """A bad command line or setting for the server: one line, exit status 2."""


def parse_fund(items: list[str]) -> dict[str, float]:
    """`ADDRESS=USD` pairs from the command line."""
    funded: dict[str, float] = {}
    for item in items:
        address, sep, amount = item.partition("=")
        if not sep or not _ADDRESS.fullmatch(address.strip()):
            raise UsageError(f"--fund {item}: expected ADDRESS=USD with a 0x and 40 hex address")
        try:
            usd = float(amount)
        except ValueError:
            raise UsageError(f"--fund {item}: {amount!r} is not a number of USD") from None
        if not 0 < usd < 1e12:
            raise UsageError(f"--fund {item}: the amount must be positive and below $1e12")
        funded[address.strip().lower()] = usd
    return funded


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check(settings: ExchangeSettings) -> None:
    if not is_loopback(settings.host) and not settings.allow_remote:
        raise UsageError(
            f"--host {settings.host} is not loopback, and the local exchange answers reads to "
            "anyone who can reach it; add --allow-remote (or [exchange] allow_remote = true) "
            "to listen there"
        )


def run(settings: ExchangeSettings, out: Callable[[str], None] | None = None) -> int:
    """Serve until stopped; 0 on a clean stop, 2 when it cannot start."""
    say = out or (lambda line: print(line, flush=True))
    check(settings)
    if settings.state_dir is not None:
        from engine.exchange.app import state_dir_ready

        state_dir_ready(settings.state_dir)
    try:
        server = LocalExchange(settings, log=say)
    except StateError as err:
        raise UsageError(str(err)) from None
    if not is_loopback(settings.host):
        say(f"warning: listening on {settings.host}, beyond this machine (--allow-remote)")

    def started(host: str, port: int) -> None:
        where = f"[{host}]" if ":" in host else host
        signatures = "mainnet" if settings.network == "mainnet" else "testnet"
        say(f"perpdesk exchange: BTC perp in Hyperliquid's API ({signatures} signatures), "
            f"seed {settings.seed}, speed {settings.speed:g}x")  # fmt: skip
        say(f"listening on http://{where}:{port}  ws://{where}:{port}/ws")
        for address, ledger in server.exchange.ledgers.items():
            say(f"account {address}: ${ledger.equity(server.exchange.mark_px()):,.2f}")
        if not server.exchange.ledgers:
            say("no accounts: fund one with --fund ADDRESS=USD")
        say(f"faults: POST http://{where}:{port}/_perpdesk/fault with {{\"fault\": NAME, ...}}; "
            f"names: {', '.join(FAULTS)}")  # fmt: skip
        say("stop: ctrl+c (SIGINT) or SIGTERM" + (
            f"; state kept in {settings.state_dir}" if settings.state_dir else ""))  # fmt: skip

    try:
        asyncio.run(server.serve(started))
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise UsageError(
                f"port {settings.port} on {settings.host} is in use; pick another with --port"
            ) from None
        raise UsageError(f"cannot listen on {settings.host}:{settings.port}: {err}") from None
    except KeyboardInterrupt:
        server.save()
    say(f"stopped: {server.status_line()}")
    return 0


def main_exchange(settings: ExchangeSettings) -> int:
    try:
        return run(settings)
    except UsageError as err:
        print(f"perpdesk: {err}", file=sys.stderr)
        return 2
