"""The one backoff: the pauses every polling and retrying loop takes, and the paces the loops name."""

from __future__ import annotations

import math
from itertools import islice

from cancel_job_mcp.backends.base import StopPolling
from cancel_job_mcp.backends.local import successor, supervisor
from cancel_job_mcp.backends.local.runtime import LocalBackend
from cancel_job_mcp.backoff import Backoff


def pauses(backoff: Backoff, count: int) -> list[float]:
    return list(islice(backoff, count))


def test_pauses_double_from_the_first_up_to_the_cap_and_stay_there() -> None:
    assert pauses(Backoff(first=0.01, cap=0.25), 7) == [0.01, 0.02, 0.04, 0.08, 0.16, 0.25, 0.25]


def test_without_a_cap_they_grow_without_end_and_never_overflow() -> None:
    assert pauses(Backoff(first=0.5), 4) == [0.5, 1.0, 2.0, 4.0]
    assert pauses(Backoff(first=1.0), 1100)[-1] == math.inf  # 2**1099 is past a float: no OverflowError


def test_a_factor_other_than_two() -> None:
    assert pauses(Backoff(first=1.0, cap=10.0, factor=3.0), 4) == [1.0, 3.0, 9.0, 10.0]


def test_a_first_pause_over_the_cap_is_cut_to_it() -> None:
    assert pauses(Backoff(first=9.0, cap=2.0), 2) == [2.0, 2.0]


def test_zero_stays_zero() -> None:
    assert pauses(Backoff(first=0.0, cap=1.0), 3) == [0.0, 0.0, 0.0]


def test_each_iteration_starts_over() -> None:
    backoff = Backoff(first=1.0, cap=8.0)
    first = iter(backoff)
    assert [next(first), next(first), next(first)] == [1.0, 2.0, 4.0]
    assert next(iter(backoff)) == 1.0
    assert next(first) == 8.0


def test_the_paces_the_loops_keep() -> None:
    """The figures the local runtime's stop timing and the service's polling were tuned with."""
    assert pauses(supervisor.LOOKS, 6) == [0.01, 0.02, 0.04, 0.08, 0.16, 0.25]
    assert pauses(supervisor.DATABASE_RETRIES, 8)[-3:] == [3.2, 5.0, 5.0]
    assert pauses(successor.WATCHING, 8)[-3:] == [0.32, 0.5, 0.5]
    assert pauses(successor.AFTER_ERROR, 3) == [0.25, 0.5, 0.5]
    assert pauses(LocalBackend.stop_polling.pauses, 6) == [0.05, 0.1, 0.2, 0.4, 0.5, 0.5]
    assert pauses(StopPolling().pauses, 6) == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0]
