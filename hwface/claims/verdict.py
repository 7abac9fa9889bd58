"""The verdict rule: a claim's verdict is computed from its ratios, never written by hand.

A claim compares latencies as ratios ``a / b`` (one per case: a pair of
networks, a stage shape). It expects each ratio below a bound: "a is faster
than b" is ``a / b < 1 - threshold``; "a costs little more than b" is
``a / b < 1 + threshold``. Over the cases that have a figure:

- every case within the bound: **holds**;
- none: **does not hold**;
- some: **holds only for some cases**, naming them.

The same rule runs on each engine's figures, so a claim that holds with TVM but
not with onnxruntime is reported as flipping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

HOLDS = "holds"
SOME = "holds only for some cases"
FAILS = "does not hold"
UNMEASURED = "not measured"


@dataclass(frozen=True)
class Expectation:
    """What a claim expects of each ratio ``a / b``: below ``bound`` (``a / b < bound``)."""

    bound: float
    says: str  # the rule in words, e.g. "a faster than b by more than 5%"

    @classmethod
    def faster(cls, threshold: float = 0.05) -> "Expectation":
        """``a`` is faster than ``b`` by more than ``threshold`` (a fraction)."""
        return cls(1 - threshold, f"a / b < {1 - threshold:.2f} (a faster by more than {threshold:.0%})")

    @classmethod
    def costs_little(cls, threshold: float = 0.10) -> "Expectation":
        """``a`` is at most ``threshold`` slower than ``b``."""
        return cls(1 + threshold, f"a / b < {1 + threshold:.2f} (a at most {threshold:.0%} slower)")

    @classmethod
    def at_most(cls, ratio: float, slack: float = 0.10) -> "Expectation":
        """``a / b`` at most ``ratio`` (within ``slack``), e.g. "2x faster": ``at_most(0.5)``."""
        return cls(ratio * (1 + slack), f"a / b < {ratio * (1 + slack):.2f} (the paper's {ratio:.2f} + {slack:.0%})")

    def holds(self, ratio: float | None) -> bool | None:
        """Whether one ratio meets the expectation (None without a figure)."""
        return None if ratio is None else bool(ratio < self.bound)


@dataclass(frozen=True)
class Verdict:
    """A verdict, the cases it rests on and those that failed."""

    verdict: str
    cases: int
    failed: tuple[str, ...] = ()

    def text(self) -> str:
        """One line: the verdict, and the failed cases when some held."""
        if self.verdict == SOME:
            return f"{SOME} (not: {', '.join(self.failed)})"
        return self.verdict


def verdict(expect: Expectation, cases: Sequence[tuple[str, float | None]]) -> Verdict:
    """The verdict of ``(label, ratio)`` cases under ``expect``; cases without a ratio are left out."""
    judged = [(label, expect.holds(r)) for label, r in cases if r is not None]
    if not judged:
        return Verdict(UNMEASURED, 0)
    failed = tuple(label for label, ok in judged if not ok)
    if not failed:
        return Verdict(HOLDS, len(judged))
    if len(failed) == len(judged):
        return Verdict(FAILS, len(judged), failed)
    return Verdict(SOME, len(judged), failed)


def rank_verdict(tau: float | None, min_tau: float) -> Verdict:
    """A ranking claim holds when Kendall's tau between the two orders reaches ``min_tau``."""
    if tau is None:
        return Verdict(UNMEASURED, 0)
    return Verdict(HOLDS if tau >= min_tau else FAILS, 1, () if tau >= min_tau else (f"tau {tau:.2f}",))
