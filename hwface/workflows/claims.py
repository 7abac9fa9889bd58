"""`hwface claims`: read the figures, check every claim, write claims.md, claims.json and the charts."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwface.errors import HwfaceError


@dataclass
class ClaimsReport:
    """What a claims run wrote and found."""

    out: Path
    files: list[Path]
    claims: list[Any]
    data: Any
    seconds: float
    missing: list[str] = field(default_factory=list)


def _writable(out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".hwface-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise HwfaceError(f"cannot write the report into {out}: {exc.strerror or exc}") from None
    return out


def write_charts(data, claims, out: Path) -> dict[str, str]:
    """Every chart the report shows, as PNG files in ``out``; file names by chart id."""
    from hwface.claims import charts

    made = {"zoo_scatter": charts.zoo_scatter(data, out / "claims_zoo.png")}
    for c in claims:
        made[c.id] = charts.ratio_bars(c, out / f"claims_{c.id}.png")
        if c.kernel_bars:
            made[f"{c.id}_kernels"] = charts.kernel_stacks(c, out / f"claims_{c.id}_kernels.png")
    return {k: p.name for k, p in made.items() if p is not None}


def run_claims(target: str = "host", out: str | Path = "claims", fingerprint: str | None = None,
               budget: int | None = None, charts: bool = True) -> ClaimsReport:
    """Check every claim on the shipped data of ``target`` and write the report into ``out``.

    Parameters
    ----------
    target : str
    out : path
        Folder for claims.md, claims.json and the PNG charts (created).
    fingerprint : str, optional
        Stored fingerprint digest or prefix (``hwface db stats``); default today's.
    budget : int, optional
        K of the tuned networks (default the tuned regime's).
    charts : bool
        Draw the charts.

    Raises
    ------
    HwfaceError
        An unwritable ``out``; no tuned zoo network measured under the fingerprint.
    """
    from hwface.claims.catalog import CLAIM_NETWORKS, VARIANT_NETWORKS, check_claims
    from hwface.claims.data import load_claims_data
    from hwface.claims.report import MEASURE_COMMAND, claims_json, claims_markdown, missing_networks

    start = time.perf_counter()
    folder = _writable(Path(out))
    data = load_claims_data(target, fingerprint, budget, variants=VARIANT_NETWORKS)
    if not any(n.tvm_us is not None for n in data.networks.values()):
        raise HwfaceError(f"no zoo network of {data.target} was measured tuned at K = {data.budget} under "
                          f"fingerprint {data.fingerprint} ({data.device}); missing: {', '.join(CLAIM_NETWORKS)}; "
                          f"measure them with `{MEASURE_COMMAND}`")
    claims = check_claims(data)
    names = write_charts(data, claims, folder) if charts else {}
    shown = {k: v for k, v in names.items() if not k.endswith("_kernels")}
    for c in claims:
        if f"{c.id}_kernels" in names:
            c.notes.append(f"Per-kernel stacks: ![kernels]({names[f'{c.id}_kernels']})")
    md, js = folder / "claims.md", folder / "claims.json"
    md.write_text(claims_markdown(data, claims, shown))
    js.write_text(json.dumps(claims_json(data, claims), indent=2, default=float) + "\n")
    return ClaimsReport(folder, [md, js, *(folder / n for n in names.values())], claims, data,
                        time.perf_counter() - start, missing_networks(data, claims))
