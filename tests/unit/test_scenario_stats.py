"""chaos.scenario.stats: the exact binomial acceptance interval the provider scenarios judge by.

The chaos tier only ever feeds it one draw per run; these cases pin it down
without Docker: small cases worked out by hand, each tail checked against an
independent binomial (scipy's), the edges, and that the provider profile's
bounds, at the scenario's own sizes, would catch a wrong rate.
"""

from __future__ import annotations

import pytest
from scipy.stats import binom

from chaos.scenario.stats import binomial_interval

# -- by hand -----------------------------------------------------------------------------------
# Binomial(10, 0.5): P(X = k) = C(10, k) / 1024, so the lower tail sums to
# 1, 11, 56, 176 (/1024) at k <= 0, 1, 2, 3, i.e. 0.00098, 0.0107, 0.0547, 0.172,
# and the upper tail mirrors it.
# Binomial(3, 0.15): P(X = k) = 0.614125, 0.325125, 0.057375, 0.003375 for k = 0..3.


@pytest.mark.parametrize(
    ("n", "p", "confidence", "interval"),
    [
        # tail 0.0005 < P(X=0): nothing can be cut.
        (10, 0.5, 0.999, (0, 10)),
        # tail 0.005: P(X<=0) = 0.00098 fits, P(X<=1) = 0.0107 does not.
        (10, 0.5, 0.99, (1, 9)),
        # tail 0.025: P(X<=1) = 0.0107 fits, P(X<=2) = 0.0547 does not.
        (10, 0.5, 0.95, (2, 8)),
        # tail 0.1: P(X<=2) = 0.0547 fits, P(X<=3) = 0.172 does not.
        (10, 0.5, 0.8, (3, 7)),
        # tail 0.005: P(X=0) is 0.61, nothing below; P(X=3) = 0.003375 fits, adding
        # P(X=2) makes 0.0608, which does not.
        (3, 0.15, 0.99, (0, 2)),
        # tail 0.1: P(X>=2) = 0.06075 fits, P(X>=1) = 0.386 does not.
        (3, 0.15, 0.8, (0, 1)),
        # tail 0.0005: even P(X=3) = 0.003375 is too much to cut.
        (3, 0.15, 0.999, (0, 3)),
        # tail 0.25 is exactly P(X=0) = P(X=2) of Binomial(2, 0.5) (both exact in binary):
        # "at most" lets each go.
        (2, 0.5, 0.5, (1, 1)),
    ],
)
def test_small_cases_worked_out_by_hand(
    n: int, p: float, confidence: float, interval: tuple[int, int]
) -> None:
    assert binomial_interval(n, p, confidence) == interval


# -- each tail, against an independent binomial -----------------------------------------------

#: Float sums of the pmf against scipy's cdf: far below any gap between two tails here.
SLACK = 1e-12


@pytest.mark.parametrize("confidence", [0.8, 0.95, 0.999])
@pytest.mark.parametrize("p", [0.0, 0.15**3, 0.15, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("n", [0, 1, 2, 5, 10, 37, 100, 360])
def test_each_tail_fits_and_is_the_largest_that_fits(n: int, p: float, confidence: float) -> None:
    """P(X < lo) and P(X > hi) are each at most (1 - confidence) / 2, and cutting one
    more value off either end would put more than that outside."""
    tail = (1.0 - confidence) / 2
    lo, hi = binomial_interval(n, p, confidence)
    assert 0 <= lo <= hi <= n
    assert binom.cdf(lo - 1, n, p) <= tail + SLACK  # P(X < lo)
    assert binom.sf(hi, n, p) <= tail + SLACK  # P(X > hi)
    assert binom.cdf(lo, n, p) > tail - SLACK  # P(X <= lo): lo + 1 would cut too much
    assert binom.sf(hi - 1, n, p) > tail - SLACK  # P(X >= hi): hi - 1 would cut too much


# -- edges --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 7, 360])
def test_a_rate_of_zero_allows_only_zero(n: int) -> None:
    assert binomial_interval(n, 0.0, 0.999) == (0, 0)


@pytest.mark.parametrize("n", [0, 1, 7, 360])
def test_a_rate_of_one_allows_only_n(n: int) -> None:
    assert binomial_interval(n, 1.0, 0.999) == (n, n)


@pytest.mark.parametrize("p", [0.0, 0.15, 0.5, 1.0])
def test_no_draws_allow_only_zero(p: float) -> None:
    assert binomial_interval(0, p, 0.999) == (0, 0)


def test_the_largest_documented_n_still_works() -> None:
    """The docstring promises n < 1030 (C(n, n/2) must fit a float)."""
    lo, hi = binomial_interval(1029, 0.5, 0.999)
    assert lo < 1029 / 2 < hi


# -- the provider profile's judgement (tests/chaos/test_scenario_provider.py) -------------------

#: The profile's numbers: 99.9 % bounds, a 15 % 429 rate, two retries before a fallback.
CONFIDENCE, RATE, RETRY_ATTEMPTS = 0.999, 0.15, 2
#: How many of the profile's 360 runs start on the injecting mock varies with the
#: rate-limit cooldown; these span what it can be.
ON_MOCK = [100, 200, 360]


@pytest.mark.parametrize("on_mock", ON_MOCK)
def test_the_first_call_interval_holds_the_configured_rate_and_refuses_wrong_ones(
    on_mock: int,
) -> None:
    """The scenario asserts ``lo <= first_429 <= hi``: the count the configured rate
    expects passes, a storm that never fired or fired at twice the rate does not."""
    lo, hi = binomial_interval(on_mock, RATE, CONFIDENCE)
    assert lo <= round(on_mock * RATE) <= hi
    assert not lo <= 0 <= hi
    assert not lo <= round(on_mock * 2 * RATE) <= hi


@pytest.mark.parametrize("on_mock", ON_MOCK)
def test_the_fallback_bound_refuses_a_fallback_without_retries(on_mock: int) -> None:
    """The scenario asserts ``fallbacks <= hi`` at rate 0.15^3 (a call and both retries
    429): falling back after the first 429 (rate 0.15) would break it many times over."""
    _, hi = binomial_interval(on_mock, RATE ** (RETRY_ATTEMPTS + 1), CONFIDENCE)
    assert round(on_mock * RATE ** (RETRY_ATTEMPTS + 1)) <= hi
    assert round(on_mock * RATE) > 3 * hi
