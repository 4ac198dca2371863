"""Pauses that grow: the one backoff of every loop here that polls or retries.

A `Backoff` is a value (a module names its own, beside the fact it paces); each loop iterates it
afresh and takes the next pause when it needs one:

    pauses = iter(LOOKS)
    while not done():
        wait(next(pauses))

Starting over (a wake-up, a slower phase) is iterating it, or another one, again. The clock and the
waiting stay with the loop: a poll that must end by a deadline trims the pause to the time left.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """`first` seconds, then each pause `factor` times the one before, never more than `cap`; endless."""

    first: float
    cap: float = math.inf
    factor: float = 2.0

    def __iter__(self) -> Iterator[float]:
        pause = min(float(self.first), self.cap)
        while True:
            yield pause
            pause = min(pause * self.factor, self.cap)
