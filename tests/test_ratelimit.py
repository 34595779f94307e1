"""The API call budget."""

from engine.ratelimit import RateBudget

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
