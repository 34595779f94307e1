"""The API call budget."""

import pytest

from engine.ratelimit import RateBudget, cancel_reserve

S = 1_000_000_000


def test_calls_leave_the_window_after_window_seconds():
    budget = RateBudget(limit=10, window_s=60)
    budget.spend(0, 4)
    budget.spend(30 * S, 4)
    assert budget.used(59 * S) == 8
    assert budget.used(60 * S) == 4  # the first 4 are exactly 60 s old
    assert budget.used(90 * S) == 0


def test_warns_at_80_percent_and_refuses_past_the_limit():
    budget = RateBudget(limit=10, window_s=60, warn_pct=80)
    budget.spend(0, 7)
    assert not budget.is_warning(0)
    budget.spend(0, 1)
    assert budget.is_warning(0)
    assert budget.can_spend(0, 2)
    assert not budget.can_spend(0, 3)


def test_the_cancel_reserve_is_max_2_or_5_percent_and_never_the_whole_budget():
    assert cancel_reserve(40) == 2
    assert cancel_reserve(1200) == 60
    assert cancel_reserve(2) == 1
    assert cancel_reserve(1) == 0
    assert RateBudget(limit=40, window_s=60).reserve == 2
    with pytest.raises(ValueError, match="reserve"):
        RateBudget(limit=10, window_s=60, reserve=10)


def test_room_under_the_limit_and_under_the_reserve():
    budget = RateBudget(limit=10, window_s=60, reserve=2)
    budget.spend(0, 7)
    assert budget.room(0) == 3
    assert budget.room(0, reserve=True) == 1
    budget.spend(S, 5)  # a cancel-all may go past the limit
    assert budget.room(S) == -2
    assert budget.room(60 * S) == 5  # the first 7 left the window


def test_free_in_says_when_the_oldest_calls_leave_the_window():
    budget = RateBudget(limit=10, window_s=60, reserve=2)
    budget.spend(0, 3)
    budget.spend(10 * S, 5)
    assert budget.free_in_ns(10 * S, 1) == 0  # 2 left under the hard limit
    assert budget.free_in_ns(10 * S, 1, reserve=True) == 50 * S  # the 3 at t=0 must go first
    assert budget.free_in_ns(10 * S, 4, reserve=True) == 60 * S  # then the 5 at t=10
    assert budget.free_in_ns(20 * S, 11) == 60 * S  # more than the limit: a window, not never


def test_many_calls_at_one_instant_are_one_entry_and_leave_together():
    budget = RateBudget(limit=100_000, window_s=1)
    for i in range(1000):
        budget.spend(i, 50)  # 1000 instants, 50 calls each
    assert budget.used(999) == 50_000
    assert budget.used(S) == 49_950  # t=0 left, exactly one window later
    assert budget.used(S + 999) == 0
