"""The L2 book: best prices, crossing rules, rejected updates, a replay of a real Binance tape."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.book import Book, BookError
from engine.events import BookUpdate, Side

DATA_DIR = Path(__file__).parents[1].parent / "shared" / "data"
BINANCE_TAPE = DATA_DIR / "usdm_btcusdt_20240808.gz"


def state(book: Book) -> tuple[object, ...]:
    """Everything observable about a book, to check that a rejected update changed nothing."""
    return (book.top(1_000_000), book.depth(), book.ts_ns, book.best_bid, book.best_ask)


def small_book() -> Book:
    book = Book(0.1)
    book.apply(
        BookUpdate(
            ts_ns=1,
            bids=((100.0, 1.0), (99.9, 2.0), (99.8, 3.0)),
            asks=((100.1, 1.5), (100.2, 2.5), (100.3, 3.5)),
        )
    )
    return book


# ---- reading the book ---------------------------------------------------------------------------


def test_snapshot_gives_best_bid_ask_mid_spread_and_top():
    book = small_book()
    assert book.best_bid == 100.0
    assert book.best_ask == 100.1
    assert book.best_bid_ticks == 1000
    assert book.best_ask_ticks == 1001
    assert book.best_bid_size == 1.0
    assert book.best_ask_size == 1.5
    assert book.mid == 100.05
    # one tick of 0.1 on a 100.05 mid: 0.1 / 100.05 * 1e4 = 9.995 bps
    assert book.spread_bps == pytest.approx(0.1 / 100.05 * 1e4)
    assert book.top(2) == (((100.0, 1.0), (99.9, 2.0)), ((100.1, 1.5), (100.2, 2.5)))
    assert book.depth() == (3, 3)
    assert book.ts_ns == 1


def test_deltas_set_levels_and_move_the_best():
    book = small_book()
    book.apply(BookUpdate(ts_ns=2, bids=((100.05, 0.0), (99.9, 7.0)), asks=(), is_snapshot=False))
    assert book.size_at(Side.BUY, 999) == 7.0
    book.apply_delta(bids=[(100.0, 0.0)], asks=[(100.1, 0.5)])
    assert book.best_bid == 99.9
    assert book.best_bid_size == 7.0
    assert book.best_ask_size == 0.5
    # bid 99.9, ask 100.1: mid 100.0
    assert book.mid == 100.0
    book.apply_delta(bids=[(100.0, 4.0)], asks=[])
    assert book.top(3)[0] == ((100.0, 4.0), (99.9, 7.0), (99.8, 3.0))


def test_size_zero_delta_removes_the_level():
    book = small_book()
    book.apply_delta(bids=[(99.9, 0.0)], asks=[(100.1, 0.0)])
    assert book.size_at(Side.BUY, 999) == 0.0
    assert book.size_at(Side.SELL, 1001) == 0.0
    assert book.top(5) == (((100.0, 1.0), (99.8, 3.0)), ((100.2, 2.5), (100.3, 3.5)))
    assert book.depth() == (2, 2)


def test_removing_a_level_that_is_not_there_is_harmless():
    book = small_book()
    book.apply_delta(bids=[(50.0, 0.0)], asks=[(150.0, 0.0)])
    assert book.depth() == (3, 3)


def test_snapshot_skips_size_zero_levels_and_replaces_everything():
    book = small_book()
    book.apply_snapshot(bids=[(90.0, 1.0), (89.0, 0.0)], asks=[(91.0, 2.0)])
    assert book.top(10) == (((90.0, 1.0),), ((91.0, 2.0),))


def test_bid_at_or_above_the_best_ask_removes_the_asks_it_crosses():
    book = small_book()
    # a bid at 100.2 means the asks at 100.1 and 100.2 are gone; 100.3 stays
    book.apply_delta(bids=[(100.2, 5.0)], asks=[])
    assert book.top(5) == (
        ((100.2, 5.0), (100.0, 1.0), (99.9, 2.0), (99.8, 3.0)),
        ((100.3, 3.5),),
    )
    assert book.best_bid is not None and book.best_ask is not None
    assert book.best_bid < book.best_ask


def test_bid_exactly_at_the_best_ask_removes_that_ask():
    book = small_book()
    book.apply_delta(bids=[(100.1, 5.0)], asks=[])
    assert book.best_bid == 100.1
    assert book.best_ask == 100.2


def test_ask_exactly_at_the_best_bid_removes_that_bid():
    book = small_book()
    book.apply_delta(bids=[], asks=[(100.0, 5.0)])
    assert book.best_bid == 99.9
    assert book.best_ask == 100.0


def test_ask_at_or_below_the_best_bid_removes_the_bids_it_crosses():
    book = small_book()
    book.apply_delta(bids=[], asks=[(99.9, 4.0)])
    assert book.top(5) == (
        ((99.8, 3.0),),
        ((99.9, 4.0), (100.1, 1.5), (100.2, 2.5), (100.3, 3.5)),
    )


def test_ask_through_the_whole_bid_side_leaves_a_one_sided_book():
    book = small_book()
    book.apply_delta(bids=[], asks=[(99.0, 1.0)])
    assert book.depth() == (0, 4)
    assert book.best_bid is None
    assert book.mid is None


def test_delta_whose_own_bid_and_ask_cross_is_rejected_and_changes_nothing():
    book = small_book()
    before = state(book)
    with pytest.raises(BookError, match=r"crosses itself: bid 100\.5 >= ask 100\.4"):
        book.apply_delta(bids=[(100.5, 1.0)], asks=[(100.4, 1.0)])
    assert state(book) == before


def test_crossed_snapshot_raises_and_leaves_the_book_unchanged():
    book = small_book()
    before = state(book)
    with pytest.raises(BookError, match=r"snapshot is crossed: best bid 101\.0 >= best ask 100\.5"):
        book.apply_snapshot(bids=[(101.0, 1.0), (100.0, 1.0)], asks=[(100.5, 1.0)])
    with pytest.raises(BookError, match="crossed"):
        book.apply_snapshot(bids=[(100.5, 1.0)], asks=[(100.5, 1.0)])  # locked counts as crossed
    assert state(book) == before


@pytest.mark.parametrize(
    ("bids", "asks", "message"),
    [
        ([(math.nan, 1.0)], [], "bid level price nan is not a finite positive number"),
        ([], [(0.0, 1.0)], "ask level price 0.0 is not a finite positive number"),
        ([], [(-100.0, 1.0)], "ask level price -100.0 is not a finite positive number"),
        ([(math.inf, 1.0)], [], "bid level price inf is not a finite positive number"),
        ([(0.01, 1.0)], [], "bid level price 0.01 rounds to zero ticks of 0.1"),
        ([(99.0, -1.0)], [], "bid level size -1.0 at price 99.0 is not a finite number >= 0"),
        ([], [(101.0, math.nan)], "ask level size nan at price 101.0 is not a finite number >= 0"),
    ],
)
def test_invalid_level_raises_book_error_naming_it_and_changes_nothing(bids, asks, message):
    book = small_book()
    before = state(book)
    # a valid level first, so a half-applied update would show
    with pytest.raises(BookError) as delta_error:
        book.apply_delta(bids=[(99.5, 9.0), *bids], asks=[(100.5, 9.0), *asks])
    assert str(delta_error.value) == message
    assert state(book) == before
    with pytest.raises(BookError) as snapshot_error:
        book.apply(BookUpdate(ts_ns=99, bids=((99.5, 9.0), *bids), asks=((100.5, 9.0), *asks)))
    assert str(snapshot_error.value) == message
    assert state(book) == before


def test_empty_book_has_no_best_no_mid_no_spread():
    book = Book(0.1)
    assert book.best_bid is None and book.best_ask is None
    assert book.best_bid_size is None and book.best_ask_size is None
    assert book.mid is None and book.spread_bps is None
    assert book.top(5) == ((), ())
    assert book.depth() == (0, 0)


def test_one_sided_book_has_its_best_but_no_mid():
    book = Book(0.1)
    book.apply_delta(bids=[(100.0, 1.0)], asks=[])
    assert book.best_bid == 100.0
    assert book.best_ask is None
    assert book.mid is None
    assert book.spread_bps is None


def test_clear_empties_the_book():
    book = small_book()
    book.clear()
    assert book.depth() == (0, 0)
    assert book.mid is None


def test_top_of_zero_levels_is_empty():
    assert small_book().top(0) == ((), ())


def test_delta_accepts_one_shot_iterators():
    book = small_book()
    book.apply_delta(bids=iter([(99.7, 1.0)]), asks=(level for level in [(100.4, 1.0)]))
    assert book.depth() == (4, 4)


# ---- prices on the tick grid --------------------------------------------------------------------


def test_ticks_print_as_the_exchange_prints_them():
    book = Book(0.1)
    assert 999957 * 0.1 != 99995.7  # the float trap the tick grid avoids
    assert book.to_price(999957) == 99995.7
    assert repr(book.to_price(999957)) == "99995.7"
    assert book.to_ticks(99995.7) == 999957
    assert book.to_ticks(61800.2) == 618002  # 61800.2 / 0.1 is 618001.9999999999


def test_mid_on_a_half_tick_prints_cleanly():
    book = Book(0.1)
    book.apply_snapshot(bids=[(99995.7, 1.0)], asks=[(99995.8, 1.0)])
    assert repr(book.mid) == "99995.75"


@pytest.mark.parametrize(
    ("tick_size", "ticks", "printed"),
    [(0.01, 12345, "123.45"), (0.5, 7, "3.5"), (1.0, 61800, "61800.0"), (0.25, 3, "0.75")],
)
def test_to_price_rounds_to_the_tick_decimals(tick_size, ticks, printed):
    assert repr(Book(tick_size).to_price(ticks)) == printed


# ---- property: the book matches a naive model and is never crossed ------------------------------

TICK = 0.1
size = st.sampled_from([0.0, 0.5, 1.0, 2.5])
# Bids mostly low and asks mostly high, overlapping in 11..20: most updates are accepted, and
# crossing (and locking: bid == ask) happens often enough to be exercised.
bid_levels = st.lists(st.tuples(st.integers(1, 20), size), max_size=6)
ask_levels = st.lists(st.tuples(st.integers(11, 30), size), max_size=6)
bad_level = st.sampled_from(
    [(math.nan, 1.0), (0.0, 1.0), (-0.1, 1.0), (math.inf, 1.0), (1.0, -1.0), (1.0, math.nan)]
)
operation = st.one_of(
    st.tuples(st.just("snapshot"), bid_levels, ask_levels),
    st.tuples(st.just("delta"), bid_levels, ask_levels),
    st.tuples(st.just("delta"), bid_levels, st.just([])),
    st.tuples(st.just("delta"), st.just([]), ask_levels),
    st.tuples(st.just("bad_delta"), bid_levels, st.tuples(bad_level, st.booleans())),
)


class ModelBook:
    """Two plain dicts of tick -> size, with the crossing rule spelled out level by level."""

    def __init__(self) -> None:
        self.bids: dict[int, float] = {}
        self.asks: dict[int, float] = {}

    def snapshot_is_crossed(self, bids, asks) -> bool:
        live_bids = [t for t, s in bids if s > 0]
        live_asks = [t for t, s in asks if s > 0]
        return bool(live_bids and live_asks and max(live_bids) >= min(live_asks))

    def snapshot(self, bids, asks) -> None:
        self.bids = {t: s for t, s in bids if s > 0}
        self.asks = {t: s for t, s in asks if s > 0}

    def delta(self, bids, asks) -> None:
        for t, s in bids:
            if s == 0:
                self.bids.pop(t, None)
            else:
                self.bids[t] = s
                self.asks = {a: q for a, q in self.asks.items() if a > t}
        for t, s in asks:
            if s == 0:
                self.asks.pop(t, None)
            else:
                self.asks[t] = s
                self.bids = {b: q for b, q in self.bids.items() if b < t}


def as_prices(tick_levels):
    return [(t * TICK, s) for t, s in tick_levels]


@settings(max_examples=300, deadline=None)
@given(st.lists(operation, min_size=1, max_size=25))
def test_book_matches_a_naive_model_and_is_never_crossed(operations):
    book = Book(TICK)
    model = ModelBook()
    for kind, bids, asks in operations:
        before = state(book)
        if kind == "bad_delta":
            bad, on_bid_side = asks
            bad_bids = [*as_prices(bids), bad] if on_bid_side else as_prices(bids)
            bad_asks = [] if on_bid_side else [bad]
            with pytest.raises(BookError):
                book.apply_delta(bad_bids, bad_asks)
            assert state(book) == before
        elif kind == "snapshot":
            if model.snapshot_is_crossed(bids, asks):
                with pytest.raises(BookError):
                    book.apply_snapshot(as_prices(bids), as_prices(asks))
                assert state(book) == before
            else:
                book.apply_snapshot(as_prices(bids), as_prices(asks))
                model.snapshot(bids, asks)
        else:
            # a delta whose own live bids and asks cross is contradictory: rejected
            if model.snapshot_is_crossed(bids, asks):
                with pytest.raises(BookError):
                    book.apply_delta(as_prices(bids), as_prices(asks))
                assert state(book) == before
            else:
                book.apply_delta(as_prices(bids), as_prices(asks))
                model.delta(bids, asks)

        top_bids, top_asks = book.top(100)
        assert [(book.to_ticks(p), s) for p, s in top_bids] == sorted(model.bids.items())[::-1]
        assert [(book.to_ticks(p), s) for p, s in top_asks] == sorted(model.asks.items())
        assert [p for p, _ in top_bids] == sorted((p for p, _ in top_bids), reverse=True)
        assert [p for p, _ in top_asks] == sorted(p for p, _ in top_asks)
        assert book.depth() == (len(model.bids), len(model.asks))
        if book.best_bid_ticks is not None and book.best_ask_ticks is not None:
            assert book.best_bid_ticks < book.best_ask_ticks
            assert book.mid is not None
        else:
            assert book.mid is None


# ---- replay of a real Binance USD-M tape --------------------------------------------------------


def test_replaying_binance_btcusdt_diffs_never_crosses_and_matches_the_book_ticker():
    if not BINANCE_TAPE.exists():
        pytest.skip(f"shared Binance tape not found at {BINANCE_TAPE} (see shared/data/README.md)")
    snapshot = None
    diffs = []  # (recv_ns, data) in file order, including those received before the snapshot
    tickers_by_update_id = {}
    first_ticker_mid = None
    with gzip.open(BINANCE_TAPE, "rt") as tape:
        for line_no, line in enumerate(tape):
            if line_no >= 2000:
                break
            recv_ns, _, payload = line.partition(" ")
            message = json.loads(payload)
            if "lastUpdateId" in message:
                snapshot = (int(recv_ns), message)
                continue
            data = message["data"]
            if data["e"] == "depthUpdate":
                diffs.append((int(recv_ns), data))
            elif data["e"] == "bookTicker":
                tickers_by_update_id[data["u"]] = data
                if first_ticker_mid is None:
                    first_ticker_mid = (float(data["b"]) + float(data["a"])) / 2
    assert snapshot is not None, "no REST depth snapshot in the first 2,000 lines"
    assert first_ticker_mid is not None

    def levels(raw):
        return tuple((float(price), float(qty)) for price, qty in raw)

    snapshot_ns, rest = snapshot
    last_update_id = rest["lastUpdateId"]
    book = Book(0.1)
    book.apply(BookUpdate(snapshot_ns, levels(rest["bids"]), levels(rest["asks"])))
    assert book.depth() == (1000, 1000)

    live_diffs = [(ns, d) for ns, d in diffs if d["u"] >= last_update_id]
    # Binance's rule: the first diff after the snapshot straddles lastUpdateId, then pu chains
    assert live_diffs[0][1]["U"] <= last_update_id <= live_diffs[0][1]["u"]
    ticker_checks = 0
    previous_u = None
    for recv_ns, diff in live_diffs:
        if previous_u is not None:
            assert diff["pu"] == previous_u, "gap in the diff chain"
        previous_u = diff["u"]
        book.apply(BookUpdate(recv_ns, levels(diff["b"]), levels(diff["a"]), is_snapshot=False))
        assert book.best_bid_ticks is not None and book.best_ask_ticks is not None
        assert book.best_bid_ticks < book.best_ask_ticks
        assert book.mid is not None
        assert abs(book.mid / first_ticker_mid - 1.0) < 0.01
        ticker = tickers_by_update_id.get(diff["u"])
        if ticker is not None:
            # same update id: the book's top must be exactly what the ticker says
            ticker_checks += 1
            assert book.best_bid == float(ticker["b"])
            assert book.best_ask == float(ticker["a"])
            assert book.best_bid_size == float(ticker["B"])
            assert book.best_ask_size == float(ticker["A"])
    assert len(live_diffs) > 100
    assert ticker_checks >= 5
