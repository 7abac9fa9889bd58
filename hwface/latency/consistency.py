"""Do a network's kernel timings agree with the same kernels timed in the other networks?

Two networks that share a kernel key under one fingerprint and regime ran the
same code: TVM's default schedule, or (tuned regime) the one record the
budget's shared database holds for it. Their kernel timings, scaled to one
reference state (:mod:`hwface.latency.reference`), should agree within the
timing noise (on rocketlake, 95% of such rows within 10% of the key's median
over the networks). A network whose shared kernels run a median 10% or more
away from the other networks' was measured in another state of the machine than
its drift guard saw: a load that came and went between its references (session
14: frmbconv_se_pre 1.81x, shufflenet_g3_face). Such a network is measured again
(``hwface db prune --network NAME``, then the command that measured it).

Sampled kernels are left out: in the tuned regime each is tuned in its own
search, so the same key there is another schedule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OFF = 0.10  # a network whose shared kernels sit this far (median ratio) from the others' is inconsistent
MIN_SHARED = 5  # keys shared with other networks below which a network is not judged


@dataclass(frozen=True)
class NetworkConsistency:
    """One network's kernels against the same keys in the other networks."""

    network: str
    kernels: int  # distinct keys it timed
    shared: int  # of them timed in at least one other network
    median_ratio: float | None  # its time over the others' median, median over the shared keys (None: too few)
    off_share: float | None  # shared keys more than OFF away from the others' median

    @property
    def consistent(self) -> bool | None:
        """False when its median ratio is OFF or more from 1; None with fewer than MIN_SHARED shared keys."""
        return None if self.median_ratio is None else abs(self.median_ratio - 1.0) < OFF


def network_consistency(rows) -> list[NetworkConsistency]:
    """Per network (the ``source`` of its profile's rows), how its kernels compare with the other networks'.

    The least consistent network is set aside and the rest compared again
    without it, until none is off: one disturbed network would otherwise pull the
    others' medians (a key two networks share has a median halfway between them).

    Parameters
    ----------
    rows : DataFrame
        Kernel rows of one fingerprint and regime (``key``, ``source``, ``median_us``),
        scaled to one reference state; rows of sampled configurations are ignored.

    Returns
    -------
    list of NetworkConsistency
        The networks set aside (in that order), then the rest, least consistent first.
    """
    nets = rows[~rows["source"].astype(str).str.startswith("sample:")]
    per = nets.groupby(["key", "source"])["median_us"].median().unstack()  # key x network
    aside: list[NetworkConsistency] = []
    while True:
        found = _compare(per)
        if not found or found[0].consistent is not False:
            return aside + found
        aside.append(found[0])
        per = per.drop(columns=found[0].network)


def _compare(per) -> list[NetworkConsistency]:
    """Each network (column of ``per``: key x network medians) against the others' median, least consistent first."""
    out = []
    for name in per.columns:
        mine = per[name].dropna()
        others = per.drop(columns=name).loc[mine.index].median(axis=1, skipna=True)
        shared = others.notna()
        ratio = (mine[shared] / others[shared]).to_numpy(dtype=float)
        judged = ratio.size >= MIN_SHARED
        out.append(NetworkConsistency(
            str(name), int(mine.size), int(shared.sum()), float(np.median(ratio)) if judged else None,
            float(np.mean(np.abs(ratio - 1.0) > OFF)) if judged else None))
    return sorted(out, key=lambda c: (c.median_ratio is None, -abs((c.median_ratio or 1.0) - 1.0), c.network))


def check_store(db, fingerprint: str, regime: str) -> list[NetworkConsistency]:
    """:func:`network_consistency` of a store's current rows of ``fingerprint`` and ``regime`` (both splits).

    Raises
    ------
    HwfaceError
        No such rows.
    """
    from hwface.errors import HwfaceError
    from hwface.latency.reference import canonical_state, normalized_rows

    rows, _ = db.current_frame(fingerprint, regime, split=None)
    if rows.empty:
        raise HwfaceError(f"no {regime} rows under fingerprint {fingerprint} to check")
    return network_consistency(normalized_rows(rows, canonical_state(rows)))
