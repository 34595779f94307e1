"""The `perpdesk` command line: parses arguments and dispatches to a subcommand or the console."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from engine.config import ConfigError, Settings, find_config_file, load_settings, settings_as_toml

if TYPE_CHECKING:
    from fractions import Fraction

    from engine.journal.export import FillRow

# Textual is imported only by the handler that starts the console, so `perpdesk config` and
# the other batch commands start fast and work on a box without a usable terminal.

PROG = "perpdesk"

Handler = Callable[[argparse.Namespace], int]


def _settings(args: argparse.Namespace) -> Settings:
    """The settings with the global flags applied (--speed)."""
    settings = load_settings(args.config)
    if getattr(args, "speed", None) is not None:
        settings = settings.model_copy(
            update={"sim": settings.sim.model_copy(update={"speed": args.speed})}
        )
    return settings


def _run_console(args: argparse.Namespace) -> int:
    settings = _settings(args)
    from engine.journal import JournalError, default_state_dir
    from engine.live import VenueUnavailable

    state_dir = args.state_dir or default_state_dir()
    try:
        if settings.venue.name != "sim":
            from engine.live import check_venue

            check_venue(settings)  # a bad venue setting is one line before anything starts
        if args.headless:
            from engine.session import main_headless

            return main_headless(settings, state_dir, adopt_journal=args.adopt_journal)
        from tui.app import run_console

        return run_console(
            settings,
            state_dir,
            adopt_journal=args.adopt_journal,
            config_path=find_config_file(args.config),
        )
    except (JournalError, VenueUnavailable) as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2


def _run_config(args: argparse.Namespace) -> int:
    path: Path | None = args.config
    settings = _settings(args)
    source = find_config_file(path)
    file_note = str(source) if source is not None else "no config file"
    print(f"# effective settings: defaults < {file_note} < {PROG.upper()}_* environment")
    print("# a setting that is not at its default has the default in its comment")
    print(settings_as_toml(settings, defaults=True), end="")
    return 0


def _run_backtest(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    # engine imports here keep `perpdesk config` fast
    import json

    from engine.backtest import format_report, run_backtest
    from engine.quoter import Quoter
    from engine.replay.binance import TapeError
    from engine.venues.recorded import VenueSetupError, backtest_venue

    flags = (("--latency-ms", args.latency_ms), ("--queue", args.queue),
             ("--fill-through", args.fill_through))  # fmt: skip
    replay_only = [flag for flag, value in flags if value is not None]
    if replay_only and args.replay is None:
        print(f"{PROG}: {', '.join(replay_only)} apply to a replay only (--replay FILE); the "
              "embedded exchange has its own latency in [sim]", file=sys.stderr)  # fmt: skip
        return 2
    try:
        recorded = backtest_venue(
            settings,
            seed=args.seed,
            fees=args.fees,
            regime=args.regime,
            informed_share=args.informed_share,
            hours=args.hours,
            replay=args.replay,
            latency_ms=args.latency_ms,
            queue=args.queue,
            fill_through=args.fill_through,
        )
    except VenueSetupError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2
    venue, hours, fees = recorded.venue, recorded.hours, recorded.fees
    seed = settings.sim.seed if args.seed is None else args.seed
    quoter = Quoter(settings.strategy, settings.risk, venue.instrument, seed=seed)
    show_progress = not args.json and sys.stderr.isatty()
    try:
        report, timing = run_backtest(
            venue, quoter, hours=hours, progress=_ProgressBar() if show_progress else None
        )
    except TapeError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2
    if show_progress:
        print("\r\033[K", end="", file=sys.stderr)
    report["seed"] = recorded.seed
    report["fees"] = fees
    report["source"] = recorded.source
    model = getattr(venue, "model", None)
    if model is not None:  # a replay: how our orders met the tape
        report["replay"] = {
            "entry_latency_ms": model.entry_latency_ms,
            "response_latency_ms": model.response_latency_ms,
            "queue": model.queue,
            "fill_through": model.fill_through,
            "min_notional_usd": model.min_notional_usd,
            "quotes_skipped_min_notional": venue.skipped_min_notional,
        }
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        print(f"backtest: {recorded.description}, fees {fees}")
        print(format_report(report, timing))
        replay = report.get("replay")
        if replay is not None and replay["quotes_skipped_min_notional"]:
            print(
                f"skipped quotes       {replay['quotes_skipped_min_notional']:,} under the "
                f"contract's ${replay['min_notional_usd']:g} minimum notional (raise "
                "strategy.quote_size_usd to quote at all)"
            )
    return 0


class _ProgressBar:
    """A one-line progress bar on stderr, shown only once a run has taken two seconds."""

    def __init__(self) -> None:
        import time

        self._clock = time.monotonic
        self._started = self._clock()

    def __call__(self, fraction: float) -> None:
        if self._clock() - self._started < 2.0:
            return
        width = 30
        done = int(width * min(max(fraction, 0.0), 1.0))
        bar = "#" * done + "-" * (width - done)
        print(
            f"\r{PROG} backtest [{bar}] {fraction * 100:3.0f}%", end="", file=sys.stderr, flush=True
        )


def _run_status(args: argparse.Namespace) -> int:
    import json
    import time

    from engine.journal import JournalError, default_state_dir, status

    state_dir = args.state_dir or default_state_dir()
    try:
        report = status(state_dir, time.time_ns())
    except JournalError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, sort_keys=True))
        return 0
    if report["last_exit"] is None:
        print(f"no session recorded in {state_dir}")
        return 0
    mark = report["mark_usd"]
    state = f"KILLED: {report['kill_reason']}" if report["killed"] else "not killed"
    account = f" account {report['account']}" if report.get("account") else ""
    last = report.get("exit_note") or report["last_exit"]  # the note starts with the exit
    base = str(report["symbol"]).split("-")[0]
    lines = [
        f"journal          {report['journal']} ({report['sessions']} sessions)",
        f"desk             {report['venue']} {report['symbol']}{account}",
        f"last session     {last}",
        f"state            {state}",
        f"position         {report['position_base']:+.5f} {base} "
        f"({_usd(report['inventory_usd'])} at {'n/a' if mark is None else f'{mark:,.2f}'})",
        f"day P&L          {_usd(report['day_pnl_usd'])}",
        f"net P&L          {_usd(report['net_pnl_usd'])}",
        f"resting orders   {report['resting_orders']} (per the journal)",
    ]
    if report.get("recovery_files"):
        lines.append(
            f"not journaled    {report['unwritten']} records, kept in "
            + ", ".join(report["recovery_files"])
            + " (read back at the next start)"
        )
    print("\n".join(lines))
    return 0


def _usd(value: float) -> str:
    """Signed dollars as the console shows them (tui.widgets.fmt.signed_usd, which this batch
    command does not import: the widgets package loads Textual): +$99.93, -$4.10."""
    text = f"{abs(value):,.2f}"
    return f"-${text}" if value < 0 and text.strip("0.,") else f"+${text}"


def _run_fills(args: argparse.Namespace) -> int:
    import csv
    import json
    import time

    from engine.journal import JOURNAL_FILE, JournalError, default_state_dir
    from engine.journal.export import FILL_COLUMNS, fill_as_dict, parse_since, read_blotter

    state_dir = args.state_dir or default_state_dir()
    since_ns = None
    try:
        if args.since is not None:
            since_ns = parse_since(args.since, time.time_ns())
        blotter = read_blotter(state_dir, since_ns=since_ns, orders=False, alerts=False)
    except (ValueError, JournalError) as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2
    fills = blotter.fills
    if not fills and blotter.last_record == 0 and since_ns is None:
        print(f"{PROG}: journal {state_dir / JOURNAL_FILE} holds no fills yet", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([fill_as_dict(fill) for fill in fills]))
    elif args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(FILL_COLUMNS)
        for fill in fills:
            writer.writerow(_csv_cell(value) for value in fill_as_dict(fill).values())
    elif not fills:
        since = f" since {args.since}" if args.since is not None else ""
        print(f"no fills in {state_dir / JOURNAL_FILE}{since}")
    else:
        print("\n".join(_fills_table(fills)))
    return 0


def _csv_cell(value: object) -> str:
    """None as an empty cell, booleans as true/false, floats as Python prints them (exact)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _utc(ts_ns: int) -> str:
    from datetime import UTC, datetime

    moment = datetime.fromtimestamp(ts_ns // 1_000_000_000, UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{ts_ns // 1_000_000 % 1000:03d}"


def _fills_table(fills: tuple[FillRow, ...]) -> list[str]:
    """The fills as a table (UTC times, fees as journaled: negative is a rebate)."""

    def bps(value: float | None) -> str:
        return "-" if value is None else f"{value:+.2f}"

    lines = [
        f"{'time (UTC)':<23} {'session':>7} {'side':<4} {'size_base':>10} {'price':>12} "
        f"{'notional_usd':>12} {'fee_usd':>9} {'kind':<5} {'mo_5s_bps':>9} {'mo_30s_bps':>10} "
        "order"
    ]
    for f in fills:
        lines.append(
            f"{_utc(f.ts_ns):<23} {f.session:>7} {f.side:<4} {f.size_base:>10.8g} "
            f"{f.price:>12,.2f} {f.notional_usd:>12,.2f} {f.fee_usd:>+9.4f} {f.kind:<5} "
            f"{bps(f.markout_5s_bps):>9} {bps(f.markout_30s_bps):>10} {f.order_id}"
        )
    makers = sum(f.is_maker for f in fills)
    volume = math.fsum(f.notional_usd for f in fills)
    fees = math.fsum(f.fee_usd for f in fills)
    lines.append(
        f"{len(fills)} fills ({makers} maker, {len(fills) - makers} taker), ${volume:,.2f} "
        f"traded, fees {_usd(fees)} (negative: rebates); markouts in bps, positive: good for us"
    )
    return lines


def _run_report(args: argparse.Namespace) -> int:
    import json
    from datetime import date

    from engine.journal import JournalError, default_state_dir
    from engine.journal.export import day_report, report_as_dict

    state_dir = args.state_dir or default_state_dir()
    try:
        day = None if args.day is None else date.fromisoformat(args.day)
    except ValueError:
        print(f"{PROG}: --day {args.day!r} is not a date: give YYYY-MM-DD (a UTC day)",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        report = day_report(state_dir, day)
    except JournalError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report_as_dict(report), sort_keys=True))
        return 0
    if not report.records:
        print(f"no records on {report.day} (UTC) in {report.journal}")
        return 0
    spread, rebates, inventory, hedge, funding, net = _cents_adding_up(
        list(report.pnl.exact().values())
    )
    sessions = ", ".join(str(s) for s in report.sessions)

    def bps(value: float | None, count: int) -> str:
        return "n/a" if value is None else f"{value:+.2f} bps ({count} fills)"

    rate = report.fill_rate
    alerts = "; ".join(
        f"{control} " + ", ".join(f"{n} {severity}" for severity, n in counts.items())
        for control, counts in report.alerts.items()
    )
    print("\n".join([
        f"journal          {report.journal}",
        f"day              {report.day} UTC: sessions {sessions} ({report.records:,} records)",
        f"net P&L          {_usd(net)}",
        f"  spread capture {_usd(spread)}",
        f"  rebates        {_usd(rebates)}",
        f"  inventory      {_usd(inventory)}",
        f"  hedge          {_usd(hedge)}",
        f"  funding        {_usd(funding)}",
        f"volume           ${report.volume_usd:,.2f} (maker ${report.maker_volume_usd:,.2f}, "
        f"taker ${report.taker_volume_usd:,.2f})",
        f"fills            {report.fills:,} ({report.maker_fills:,} maker, "
        f"{report.taker_fills:,} taker)",
        f"fill rate        {'n/a' if rate is None else f'{rate:.1%}'} ({report.quotes_filled:,} "
        f"of {report.quotes_sent:,} quotes sent that day were filled that day)",
        f"markouts         5 s {bps(report.markout_5s_bps, report.markouts_5s)}, "
        f"30 s {bps(report.markout_30s_bps, report.markouts_30s)}",
        f"max inventory    ${report.max_inventory_usd:,.2f}",
        f"alerts           {alerts or 'none'}",
    ]))  # fmt: skip
    return 0


def _cents_adding_up(exact: list[Fraction]) -> list[float]:
    """Terms and their net (last), exact, in dollars to the cent such that the terms shown add
    up to the net shown: the net rounded to the cent, each term within a cent of its value
    (rounded down, then the cents left go to the largest remainders)."""
    from fractions import Fraction

    *terms, net = exact
    cents = [math.floor(term * 100) for term in terms]
    left = round(net * 100) - sum(cents)
    by_remainder = sorted(range(len(terms)), key=lambda i: terms[i] * 100 - cents[i], reverse=True)
    for i in by_remainder[: max(0, left)]:
        cents[i] += 1
    return [float(Fraction(c, 100)) for c in [*cents, sum(cents)]]


def _run_exchange(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    from engine.exchange.main import UsageError, main_exchange, parse_fund

    try:
        fund = dict(settings.exchange.fund) | parse_fund(args.fund or [])
    except UsageError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2
    update: dict[str, object] = {"fund": fund}
    for name in ("host", "port", "seed", "speed"):
        value = getattr(args, name)
        if value is not None:
            update[name] = value
    if args.exchange_state_dir is not None:
        update["state_dir"] = str(args.exchange_state_dir)
    if args.allow_remote:
        update["allow_remote"] = True
    exchange = settings.exchange.model_validate({**settings.exchange.model_dump(), **update})
    return main_exchange(exchange)


def _number(text: str, rule: str, ok: Callable[[float], bool]) -> float:
    """A finite number that `ok` accepts; argparse prints the rule and the text otherwise."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not ok(value):
        raise argparse.ArgumentTypeError(f"must be {rule}, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    return _number(text, "a number > 0", lambda v: v > 0)


def _not_negative_float(text: str) -> float:
    return _number(text, "a number >= 0", lambda v: v >= 0)


def _share(text: str) -> float:
    return _number(text, "a number within 0..1", lambda v: 0.0 <= v <= 1.0)


def _journal_reader_state_dir(command: argparse.ArgumentParser) -> None:
    """`--state-dir` for a command that reads the journal; given before the command, it counts
    too (the default is SUPPRESS, so the global flag's value is not overwritten)."""
    command.add_argument(
        "--state-dir",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="DIR",
        help="state directory (default: $XDG_STATE_HOME/perpdesk)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The parser: global options, one subparser per command; no command starts the console."""
    # --config is accepted before or after the command (`perpdesk config --config x.toml`).
    # SUPPRESS keeps a subparser's unset --config from overwriting the global one.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="settings file (TOML); default ./perpdesk.toml if it exists",
    )
    parser = argparse.ArgumentParser(
        prog=PROG,
        parents=[common],
        description="A terminal console for market making on perpetual futures.",
        epilog="Settings: defaults < TOML file < PERPDESK_SECTION__KEY environment variables.",
    )
    parser.set_defaults(handler=_run_console)
    parser.add_argument(
        "--headless",
        action="store_true",
        help="run the engine without the screen, one status line a second (stop: SIGINT/TERM)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where the journal lives (default: $XDG_STATE_HOME/perpdesk)",
    )
    parser.add_argument(
        "--adopt-journal",
        action="store_true",
        help="carry on a journal written for another venue, symbol or account, or whose last "
        "session's recovery file is missing (refused otherwise)",
    )
    parser.add_argument(
        "--speed",
        type=_positive_float,
        default=None,
        metavar="N",
        help="run the embedded exchange N times faster than the wall clock (default [sim] speed)",
    )
    commands = parser.add_subparsers(
        title="commands", metavar="[COMMAND]", description="with no command, start the console"
    )

    config = commands.add_parser(
        "config",
        parents=[common],
        help="print the effective settings as TOML (secrets masked)",
        description="Print the effective settings as TOML; secrets are never shown.",
    )
    config.set_defaults(handler=_run_config)

    backtest = commands.add_parser(
        "backtest",
        parents=[common],
        help="run the strategy against the embedded exchange or a recorded tape",
        description="Run the quoter core on a simulated clock as fast as the CPU allows, "
        "then print a report: volume, fills, each P&L term, drawdown, markouts, and the "
        "day set beside the guide's hypothetical one.",
    )
    backtest.add_argument(
        "--hours",
        type=_positive_float,
        default=None,
        help="simulated hours (default 8; a replay runs to the tape's end)",
    )
    backtest.add_argument("--seed", type=int, default=None, help="seed (default [sim] seed)")
    backtest.add_argument(
        "--fees",
        choices=["guide", "hyperliquid-base", "binance-usdm-base"],
        default=None,
        help="fee schedule (default: [sim] fees; a replay: its venue's, binance-usdm-base)",
    )
    backtest.add_argument(
        "--regime",
        default=None,
        choices=["auto", "quiet", "normal", "volatile", "crash", "flat"],
        help="pin the simulated price regime (default [sim] regime)",
    )
    backtest.add_argument(
        "--informed-share",
        type=_share,
        default=None,
        help="share of informed takers, 0..1 (default [sim] informed_share)",
    )
    backtest.add_argument(
        "--replay",
        type=Path,
        default=None,
        metavar="FILE",
        help="replay a recorded Binance USD-M stream instead of simulating",
    )
    backtest.add_argument(
        "--latency-ms",
        type=_not_negative_float,
        default=None,
        metavar="N",
        help="a replay's order latency, each way (default [replay] entry/response_latency_ms)",
    )
    backtest.add_argument(
        "--queue",
        choices=["risk-averse", "power"],
        default=None,
        help="a replay's queue model (default [replay] queue)",
    )
    backtest.add_argument(
        "--fill-through",
        choices=["full", "traded"],
        default=None,
        help="a replay's fill when a trade prints beyond our price (default [replay])",
    )
    backtest.add_argument("--json", action="store_true", help="print the report as one JSON object")
    backtest.set_defaults(handler=_run_backtest)

    exchange = commands.add_parser(
        "exchange",
        parents=[common],
        help="serve the embedded exchange on loopback in Hyperliquid's API",
        description="Run the embedded market as a local exchange speaking Hyperliquid's "
        "HTTP and WebSocket API (any Hyperliquid client can trade on it; several desks at "
        "once), with accounts, faults on demand and, with --state-dir, accounts that survive "
        "a restart. Stop with ctrl+c or SIGTERM.",
    )
    exchange.add_argument("--host", default=None, help="address (default [exchange] host)")
    exchange.add_argument(
        "--port", type=int, default=None, help="TCP port (default [exchange] port, 8800)"
    )
    exchange.add_argument("--seed", type=int, default=None, help="seed (default [exchange] seed)")
    exchange.add_argument(
        "--speed",
        type=_positive_float,
        default=None,
        metavar="X",
        help="market clock in x real time (default [exchange] speed)",
    )
    exchange.add_argument(
        "--fund",
        action="append",
        metavar="ADDRESS=USD",
        help="open an account with this much USD (repeatable)",
    )
    exchange.add_argument(
        "--state-dir",
        dest="exchange_state_dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep accounts, open orders and fills here across restarts",
    )
    exchange.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host beyond this machine (reads are not authenticated)",
    )
    exchange.set_defaults(handler=_run_exchange)

    status = commands.add_parser(
        "status",
        parents=[common],
        help="print the last session's state from the journal (does not start the engine)",
        description="Read the journal in the state directory and print position, day P&L, "
        "the kill state, resting orders and how the last session ended.",
    )
    _journal_reader_state_dir(status)
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(handler=_run_status)

    fills = commands.add_parser(
        "fills",
        parents=[common],
        help="print the journal's fills with their markouts (does not start the engine)",
        description="Read the journal in the state directory and print the fills of every "
        "session, oldest first: time (UTC), session, side, size, price, notional, fee "
        "(negative: a rebate), maker or taker, and the 5 s and 30 s markouts in bps "
        "(positive: the fill was good for us; empty until the marks exist).",
    )
    _journal_reader_state_dir(fills)
    fills.add_argument(
        "--since",
        default=None,
        metavar="T",
        help="only fills at or after T: 2026-12-05T13:00 (UTC), 13:00 (today, UTC), or 30m, "
        "2h back from now",
    )
    fills_format = fills.add_mutually_exclusive_group()
    fills_format.add_argument("--csv", action="store_true", help="CSV, with a header row")
    fills_format.add_argument("--json", action="store_true", help="one JSON array of fills")
    fills.set_defaults(handler=_run_fills)

    report = commands.add_parser(
        "report",
        parents=[common],
        help="print a day's P&L by term, volume, fills and markouts from the journal",
        description="Fold the journal as a restart does and print one UTC day: P&L by term "
        "(exact: the terms add up to the net), volume, fills, fill rate, markouts, the "
        "largest inventory, alerts by control, and the sessions that ran.",
    )
    _journal_reader_state_dir(report)
    report.add_argument(
        "--day",
        default=None,
        metavar="YYYY-MM-DD",
        help="the UTC day (default: the day of the journal's latest record)",
    )
    report.add_argument(
        "--json", action="store_true", help="one JSON object (P&L terms also exact, as text)"
    )
    report.set_defaults(handler=_run_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run perpdesk; returns the exit status (0 ok, 1 not available, 2 bad usage or settings)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits on --help and on usage errors
        return exit_.code if isinstance(exit_.code, int) else 2
    if not hasattr(args, "config"):
        args.config = None
    handler: Handler = args.handler
    try:
        code = handler(args)
        sys.stdout.flush()
        return code
    except ConfigError as err:
        for problem in err.problems:
            print(f"{PROG}: {problem}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `perpdesk config | head -1`: the reader left, nothing is wrong
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
