"""Exporting the journal: `perpdesk fills`, `perpdesk report` and the console's blotter."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from test_session import WALL0, FakeClocks, run  # WALL0: 2025-11-24 16:00 UTC

from engine.config import Settings
from engine.events import Fill, Side
from engine.journal import Journal, iter_records, recover
from engine.journal.export import (
    FILL_COLUMNS,
    day_report,
    fill_as_dict,
    parse_since,
    read_blotter,
    refresh_markouts,
)
from engine.session import open_engine
from tui.cli import main

S = 1_000_000_000
DAY = 86_400 * S
TERMS = ("spread_usd", "rebates_usd", "inventory_usd", "hedge_usd", "funding_usd")


def start_session(state_dir: Path, clocks: FakeClocks):
    """A journaled session on the embedded exchange in a volatile market with many informed
    takers: fills come every few seconds."""
    settings = Settings.model_validate(
        {
            "sim": {"regime": "volatile", "informed_share": 0.5},
            "strategy": {"quote_size_usd": 600.0},
        }
    )
    return open_engine(settings, state_dir, wall_ns=clocks.wall, clock=clocks.monotonic)


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two sessions (a restart) of two simulated minutes each, in one state directory."""
    state_dir = tmp_path_factory.mktemp("desk")
    clocks = FakeClocks()
    for _ in range(2):
        engine = start_session(state_dir, clocks)
        run(engine, clocks, 120.0)
        engine.finish("clean")
    return state_dir


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def from_csv(name: str, cell: str) -> object:
    if cell == "":
        return None
    if name in ("ts_ns", "session", "record_id"):
        return int(cell)
    if name == "is_maker":
        return {"true": True, "false": False}[cell]
    if name in ("order_id", "trade_id", "side", "kind"):
        return cell
    return float(cell)


# ---- the blotter ------------------------------------------------------------------------


def test_the_fills_of_both_sessions_come_back_oldest_first_as_journaled(desk: Path) -> None:
    fills = read_blotter(desk).fills
    assert {f.session for f in fills} == {1, 2}
    journaled = [(seq, json.loads(data)) for seq, _, _, kind, data in iter_records(desk)
                 if kind == "fill"]  # fmt: skip
    assert [f.record_id for f in fills] == [seq for seq, _ in journaled]
    assert [f.ts_ns for f in fills] == sorted(f.ts_ns for f in fills)
    for fill, (_, data) in zip(fills, journaled, strict=True):
        assert fill.side == ("buy" if data["side"] == 1 else "sell")
        assert (fill.price, fill.size_base, fill.fee_usd) == (
            data["price"], data["size_base"], data["fee_usd"]
        )  # fmt: skip
        assert fill.notional_usd == data["price"] * data["size_base"]
        assert fill.kind == ("maker" if data["is_maker"] else "taker")
    assert {f.kind for f in fills} == {"maker", "taker"}  # quotes filled, and hedges
    assert sum(f.markout_30s_bps is not None for f in fills) > len(fills) / 2


def test_fills_csv_parses_back_to_the_same_rows(
    desk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "fills", "--state-dir", str(desk), "--csv")
    assert code == 0, err
    reader = csv.DictReader(io.StringIO(out))
    assert tuple(reader.fieldnames or ()) == FILL_COLUMNS
    parsed = [{name: from_csv(name, cell) for name, cell in row.items()} for row in reader]
    expected = [fill_as_dict(fill) for fill in read_blotter(desk).fills]
    assert len(parsed) == len(expected) > 10
    for got, want in zip(parsed, expected, strict=True):
        for name in FILL_COLUMNS:
            assert got[name] == want[name], name
            assert type(got[name]) is type(want[name]), name


def test_fills_json_is_the_same_rows(desk: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "--state-dir", str(desk), "fills", "--json")  # dir given first
    assert code == 0, err
    assert json.loads(out) == [fill_as_dict(fill) for fill in read_blotter(desk).fills]


def test_the_fills_table_shows_every_fill_and_the_totals(
    desk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "fills", "--state-dir", str(desk))
    fills = read_blotter(desk).fills
    lines = out.splitlines()
    assert code == 0
    assert lines[0].startswith("time (UTC)")
    assert len(lines) == len(fills) + 2
    assert lines[1].startswith("2025-11-24 16:0")
    makers = sum(f.is_maker for f in fills)
    assert lines[-1].startswith(f"{len(fills)} fills ({makers} maker, {len(fills) - makers} taker)")


def test_since_keeps_the_fills_at_or_after_it(
    desk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fills = read_blotter(desk).fills
    middle = fills[len(fills) // 2]
    at = datetime.fromtimestamp(middle.ts_ns // S, UTC)
    since = f"{at:%Y-%m-%dT%H:%M:%S}.{middle.ts_ns // 1_000_000 % 1000:03d}"
    code, out, err = cli(capsys, "fills", "--state-dir", str(desk), "--since", since, "--json")
    assert code == 0, err
    kept = [fill_as_dict(f) for f in fills if f.ts_ns >= middle.ts_ns]
    assert json.loads(out) == kept
    assert kept[0] == fill_as_dict(middle) and len(kept) < len(fills)
    assert read_blotter(desk, since_ns=middle.ts_ns).fills == tuple(
        f for f in fills if f.ts_ns >= middle.ts_ns
    )


def test_since_reads_iso_times_times_of_day_and_durations() -> None:
    now = WALL0 + 123 * S  # 2025-11-24 16:02:03 UTC
    assert parse_since("30m", now) == now - 1_800 * S
    assert parse_since("2h", now) == now - 7_200 * S
    assert parse_since("13:00", now) == WALL0 - 3 * 3_600 * S
    assert parse_since("2025-11-24T16:00", now) == WALL0
    assert parse_since("2025-11-24T17:00+01:00", now) == WALL0
    assert parse_since("2025-11-24T16:00:00.25", now) == WALL0 + S // 4
    for bad in ("yesterday", "25:00", "", "30 minutes", "2025-13-01"):
        with pytest.raises(ValueError, match="is not a time"):
            parse_since(bad, now)


# ---- markouts on a journal written by hand --------------------------------------------------


def maker_fill(order_id: str, side: Side, price: float, size: float, fee: float = 0.0) -> Fill:
    return Fill(0, order_id, side, price, size, fee_usd=fee, is_maker=True, leaves_base=0.0)


def test_markouts_use_the_first_mark_of_the_same_session_at_or_after_the_horizon(
    tmp_path: Path,
) -> None:
    t0 = WALL0
    first = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=t0)
    first.mark(t0, 100_000.0)
    first.fill(t0 + 2 * S, maker_fill("b1", Side.BUY, 100_000.0, 0.01), mid=100_000.0)
    first.fill(t0 + 2 * S + S // 2, maker_fill("s1", Side.SELL, 100_000.0, 0.01), mid=100_000.0)
    first.fill(t0 + 20 * S, maker_fill("b2", Side.BUY, 100_200.0, 0.01), mid=100_200.0)
    for k in range(1, 41):  # the mid climbs $10 a second
        first.mark(t0 + k * S, 100_000.0 + 10 * k)
    first.close("clean", t0 + 41 * S)
    second = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=t0 + 45 * S)
    for k in range(45, 61):  # another session's marks never settle the first one's fills
        second.mark(t0 + k * S, 90_000.0)
    second.close("clean", t0 + 61 * S)

    buy, sell, late = read_blotter(tmp_path).fills
    # the buy at 2 s: marks at 7 s ($100,070) and 32 s ($100,320), exactly 5 s and 30 s later
    assert buy.markout_5s_bps == pytest.approx(7.0)
    assert buy.markout_30s_bps == pytest.approx(32.0)
    # the sell at 2.5 s: the first marks at or after 7.5 s and 32.5 s are at 8 s and 33 s
    assert sell.markout_5s_bps == pytest.approx(-8.0)
    assert sell.markout_30s_bps == pytest.approx(-33.0)
    # the buy at 20 s: 5 s later $100,250; its session ended before 50 s
    assert late.markout_5s_bps == pytest.approx(50 / 100_200 * 1e4)
    assert late.markout_30s_bps is None
    report = day_report(tmp_path)
    assert report.markout_5s_bps == pytest.approx((7.0 - 8.0 + 50 / 100_200 * 1e4) / 3)
    assert report.markout_30s_bps == pytest.approx((32.0 - 33.0) / 2)
    assert (report.markouts_5s, report.markouts_30s) == (3, 2)


def test_the_console_reads_only_new_rows_and_refreshes_markouts_while_a_session_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clocks = FakeClocks()
    engine = start_session(tmp_path, clocks)
    run(engine, clocks, 60.0)
    first = read_blotter(tmp_path)  # no lock taken: the session keeps writing
    assert cli(capsys, "fills", "--state-dir", str(tmp_path), "--json")[0] == 0
    run(engine, clocks, 60.0)
    second = read_blotter(tmp_path, after_record=first.last_record)
    engine.finish("clean")
    third = read_blotter(tmp_path, after_record=second.last_record)  # the shutdown's cancels
    assert first.fills and second.fills
    assert all((f.record_id or 0) > first.last_record for f in second.fills)
    assert first.fills[-1].markout_30s_bps is None  # its marks were still to come
    everything = read_blotter(tmp_path)
    seen = first.fills + second.fills + third.fills
    assert [f.record_id for f in seen] == [f.record_id for f in everything.fills]
    assert refresh_markouts(tmp_path, seen) == everything.fills
    assert first.orders + second.orders + third.orders == everything.orders
    assert first.alerts + second.alerts + third.alerts == everything.alerts
    assert third.last_record == max(seq for seq, *_ in iter_records(tmp_path))


# ---- the day report ----------------------------------------------------------------------


def test_report_terms_add_up_to_net_exactly_and_equal_what_recovery_rebuilds(
    desk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "report", "--state-dir", str(desk), "--json")
    assert code == 0, err
    report = json.loads(out)
    ledger = recover(desk, WALL0 + 300 * S).ledger
    exact = {name: Decimal(text) for name, text in report["pnl_usd_exact"].items()}
    assert sum(exact[name] for name in TERMS) == exact["net_usd"]
    for name in TERMS:
        assert Fraction(exact[name]) == getattr(ledger, name.removesuffix("_usd"))
    assert report["pnl_usd"] == dataclasses.asdict(ledger.terms())  # the same floats
    fills = read_blotter(desk).fills
    assert report["day"] == "2025-11-24" and report["sessions"] == [1, 2]
    assert report["fills"] == len(fills) == ledger.fills
    assert report["maker_fills"] == sum(f.is_maker for f in fills)
    assert report["volume_usd"] == pytest.approx(ledger.volume_usd, rel=1e-12)
    assert 0 < report["quotes_filled"] <= report["quotes_sent"]
    five = [f.markout_5s_bps for f in fills if f.markout_5s_bps is not None]
    assert report["markout_5s_bps"] == pytest.approx(sum(five) / len(five))
    assert report["markouts_5s"] == len(five)
    assert 0 < report["max_inventory_usd"] < 2_000  # the hedge keeps it under ~$1,200


def test_the_report_table_shows_terms_that_add_up_to_the_net_shown(
    desk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "report", "--state-dir", str(desk))
    assert code == 0
    pattern = r"^\s*(net P&L|spread capture|rebates|inventory|hedge|funding)\s+([+-])\$([\d,.]+)$"
    shown = {
        name: Decimal(sign + amount.replace(",", ""))
        for name, sign, amount in re.findall(pattern, out, re.MULTILINE)
    }
    assert len(shown) == 6
    net = shown.pop("net P&L")
    assert sum(shown.values()) == net
    terms = day_report(desk).pnl.terms()
    assert abs(float(net) - terms.net_usd) <= 0.005


def test_a_day_report_splits_at_utc_midnight_and_the_days_add_up_to_the_ledger(
    tmp_path: Path,
) -> None:
    midnight = 20_417 * DAY  # 2025-11-25 00:00 UTC
    first = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=midnight - 60 * S)
    first.append("order_sent", midnight - 55 * S,
                 {"order_id": "q1", "kind": "quote", "side": 1, "price": 100_000.0,
                  "size_base": 0.01})  # fmt: skip
    first.fill(midnight - 50 * S, maker_fill("q1", Side.BUY, 100_000.0, 0.01, -0.25), 100_010.0)
    first.mark(midnight - 10 * S, 100_100.0)
    first.append("funding", midnight - 5 * S, {"rate": 0.0001, "mark_price": 100_100.0})
    first.close("clean", midnight - S)
    second = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=midnight + 5 * S)
    second.mark(midnight + 10 * S, 100_200.0)  # the night's move is the new day's
    hedge = Fill(0, "h1", Side.SELL, 100_190.0, 0.01, fee_usd=0.5, is_maker=False, leaves_base=0)
    second.fill(midnight + 20 * S, hedge, 100_200.0)
    second.append("alert", midnight + 21 * S,
                  {"severity": "WARNING", "control": "daily loss", "message": "near the limit",
                   "value": None, "threshold": None})  # fmt: skip
    second.mark(midnight + 30 * S, 100_300.0)
    second.close("clean", midnight + 31 * S)

    before = day_report(tmp_path, date(2025, 11, 24))
    after = day_report(tmp_path)  # the day of the latest record
    assert after.day == date(2025, 11, 25)
    assert before.pnl.exact() == {
        "spread_usd": Fraction("0.1"),  # 0.01 * ($100,010 - $100,000)
        "rebates_usd": Fraction("0.25"),
        "inventory_usd": Fraction("0.9"),  # 0.01 * ($100,100 - $100,010)
        "hedge_usd": 0,
        "funding_usd": Fraction("-0.1001"),  # a long pays 0.01 * $100,100 * 0.0001
        "net_usd": Fraction("1.1499"),
    }
    assert after.pnl.exact() == {
        "spread_usd": 0,
        "rebates_usd": 0,
        "inventory_usd": Fraction("1"),  # 0.01 * ($100,200 - $100,100)
        "hedge_usd": Fraction("-0.6"),  # -0.01 * ($100,200 - $100,190) - $0.50
        "funding_usd": 0,
        "net_usd": Fraction("0.4"),
    }
    ledger = recover(tmp_path, midnight + DAY // 2).ledger
    for name in TERMS:
        total = getattr(ledger, name.removesuffix("_usd"))
        assert getattr(before.pnl, name) + getattr(after.pnl, name) == total
    assert (before.sessions, after.sessions) == ((1,), (2,))
    assert (before.maker_fills, before.taker_fills, after.maker_fills, after.taker_fills) == (
        1, 0, 0, 1
    )  # fmt: skip
    assert (before.quotes_sent, before.quotes_filled, before.fill_rate) == (1, 1, 1.0)
    assert before.max_inventory_usd == pytest.approx(1_001.0)  # 0.01 at $100,100
    assert after.max_inventory_usd == pytest.approx(1_002.0)  # 0.01 at $100,200, then flat
    assert (before.alerts, after.alerts) == ({}, {"daily loss": {"WARNING": 1}})
    assert after.volume_usd == pytest.approx(1_001.9)
    assert day_report(tmp_path, date(2025, 11, 26)).pnl.net_usd == 0


def test_records_still_in_a_recovery_file_are_read_as_recovery_reads_them(tmp_path: Path) -> None:
    journal = Journal(tmp_path, venue="sim", symbol="BTC-PERP", started_ns=WALL0)
    journal.fill(WALL0 + S, maker_fill("q1", Side.BUY, 100_000.0, 0.01, -0.25), 100_000.0)
    journal.close("clean", WALL0 + 2 * S)
    lines = [  # what a session whose disk filled up leaves for the next one to read back
        {"session": 1, "ts_ns": WALL0 + 3 * S, "kind": "fill",
         "data": {"order_id": "q2", "side": -1, "price": 100_050.0, "size_base": 0.01,
                  "fee_usd": -0.25, "is_maker": True, "leaves_base": 0.0, "mid": 100_040.0}},
        {"session": 1, "ts_ns": WALL0 + 9 * S, "kind": "mark", "data": {"mid": 100_100.0}},
    ]  # fmt: skip
    recovery = tmp_path / f"recovery-1-{WALL0 + 2 * S}.jsonl"
    recovery.write_text("".join(json.dumps(line) + "\n" for line in lines))
    blotter = read_blotter(tmp_path)
    assert [(f.order_id, f.record_id is None) for f in blotter.fills] == [
        ("q1", False), ("q2", True)
    ]  # fmt: skip
    # sold at $100,050; the mid 5 s later (the file's mark, at 9 s) is $50 higher
    assert blotter.fills[1].markout_5s_bps == pytest.approx(-50 / 100_050 * 1e4)
    assert read_blotter(tmp_path, after_record=blotter.last_record).fills == ()
    ledger = recover(tmp_path, WALL0 + 10 * S).ledger
    assert ledger.fills == 2
    assert day_report(tmp_path).pnl.terms() == ledger.terms()


# ---- refusals ----------------------------------------------------------------------------


def test_a_bad_since_or_day_is_one_line_and_exit_2(
    desk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "fills", "--state-dir", str(desk), "--since", "last tuesday")
    assert (code, out) == (2, "")
    assert err.startswith("perpdesk: --since 'last tuesday' is not a time") and err.count("\n") == 1
    code, out, err = cli(capsys, "report", "--state-dir", str(desk), "--day", "2025-11-31")
    assert (code, out) == (2, "")
    assert err == "perpdesk: --day '2025-11-31' is not a date: give YYYY-MM-DD (a UTC day)\n"


def test_an_empty_state_dir_or_journal_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o700)
    for command in ("fills", "report"):
        code, out, err = cli(capsys, command, "--state-dir", str(empty))
        assert (code, out) == (2, "")
        assert err == f"perpdesk: no journal in {empty}: no session has run with this state " \
            "directory\n"  # fmt: skip
    assert list(empty.iterdir()) == []  # nothing created, no lock taken
    quiet = tmp_path / "quiet"
    Journal(quiet, venue="sim", symbol="BTC-PERP", started_ns=WALL0).close("clean", WALL0 + S)
    code, out, err = cli(capsys, "fills", "--state-dir", str(quiet), "--csv")
    assert (code, out, err.count("\n")) == (2, "", 1)
    assert err == f"perpdesk: journal {quiet / 'journal.sqlite'} holds no fills yet\n"
    code, out, err = cli(capsys, "report", "--state-dir", str(quiet))
    assert (code, out) == (2, "")
    assert err == f"perpdesk: journal {quiet / 'journal.sqlite'} holds no records yet\n"
