"""`hwface db stats|prune|check|migrate|query|export`: the latency database."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys

from hwface.cli.common import add_format
from hwface.errors import HwfaceError

QUERY_COLUMNS = ("op", "fused", "input_shapes", "output_shape", "kernel", "stride", "groups", "activation", "madds",
                 "regime", "tuned", "device_key", "median_us", "p10_us", "p90_us", "cv", "source")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("db", help="the latency database: stats, query, export")
    dsub = p.add_subparsers(dest="db_command", metavar="SUBCOMMAND")
    dsub.required = True

    def common(q):
        q.add_argument("--target", default="host", help="target whose database to read (default host)")
        q.add_argument("--db", help="database file (default latency_db/<target>.sqlite)")

    q = dsub.add_parser("stats", help="counts per regime, op kind, device")
    common(q)
    add_format(q, ("table", "json"))
    q.set_defaults(func=run_stats)

    q = dsub.add_parser("prune", help="move stale rows, or one network's rows, into the archive tables")
    common(q)
    which = q.add_mutually_exclusive_group(required=True)
    which.add_argument("--stale", action="store_true", help="archive the rows whose fingerprint is not today's")
    which.add_argument("--network", metavar="NAME",
                       help="archive this network's rows of today's fingerprint (its end-to-end rows and its "
                            "profile's kernel rows), so that the next measuring run measures it again")
    q.add_argument("--regime", choices=("zoo", "default", "tuned"), default="tuned",
                   help="--network's regime (default tuned)")
    q.add_argument("--dry-run", action="store_true", help="show what would move, move nothing")
    add_format(q, ("table", "json"))
    q.set_defaults(func=run_prune)

    q = dsub.add_parser("check", help="each network's kernels against the same kernels timed in the other networks")
    common(q)
    q.add_argument("--regime", choices=("zoo", "default", "tuned"), default="tuned", help="regime (default tuned)")
    q.add_argument("--fingerprint", metavar="DIGEST", help="another device's data (default: today's)")
    add_format(q, ("table", "json"))
    q.set_defaults(func=run_check)

    q = dsub.add_parser("migrate", help="bring a database to this hwface's schema (the shipped one is read as it is)")
    common(q)
    add_format(q, ("table", "json"))
    q.set_defaults(func=run_migrate)

    q = dsub.add_parser("query", help="measurements, filtered")
    common(q)
    q.add_argument("--regime", choices=("zoo", "default", "tuned"))
    q.add_argument("--op", help="op kind (conv, dwconv, pwconv, ...)")
    q.add_argument("--key", dest="layer_key", help="one layer key (LayerKey.to_str())")
    q.add_argument("--where", nargs="*", default=[], metavar="COL=VALUE", help="extra equality filters")
    q.add_argument("--limit", type=int, default=50, help="rows to show (default 50; 0 = all)")
    add_format(q)
    q.set_defaults(func=run_query)

    q = dsub.add_parser("export", help="export measurements with their layer fields (pandas)")
    common(q)
    q.add_argument("--format", choices=("csv", "parquet", "json"), default="csv")
    q.add_argument("-o", "--output", help="output file (default stdout; parquet needs a file)")
    q.add_argument("--regime", choices=("zoo", "default", "tuned"))
    q.set_defaults(func=run_export)


def _open(args, write: bool = False):
    """The database ``--db`` names, else the target's: the one read from, or with ``write`` the user's."""
    from pathlib import Path

    from hwface.latency.store import LatencyStore, read_path

    path = Path(args.db) if args.db else read_path(args.target)
    if not path.exists():
        raise HwfaceError(f"no latency database at {path}: run `hwface profile` or `hwface sample` first")
    if not path.is_file():
        raise HwfaceError(f"{path} is not a latency database (not a file)")
    try:
        if args.db:
            return LatencyStore(path)
        return LatencyStore.for_writing(args.target) if write else LatencyStore.for_reading(args.target)
    except sqlite3.DatabaseError as exc:
        raise HwfaceError(f"{path} is not a latency database (SQLite: {exc})") from None


def _today(args):
    """Today's :class:`~hwface.latency.fingerprint.Fingerprint` for ``--target``."""
    from hwface.latency.fingerprint import current_fingerprint
    from hwface.targets import load_target

    return current_fingerprint(load_target(args.target))


def run_stats(args: argparse.Namespace) -> int:
    from hwface.latency.fingerprint import Fingerprint

    fp = _today(args)
    today, described = fp.digest(), fp.describe()
    with _open(args) as db:
        st = db.stats()
        st["current_fingerprint"] = {"digest": today, "describes": described}
        st["current_vs_stale"] = db.stale_counts(fp)
        relations = db.relations(fp)
        st["fingerprints"] = {d: {"describes": Fingerprint.from_dict(f).describe(), "relation": relations[d]}
                              for d, f in db.fingerprints().items()}
        st["archived"] = db.archived()
        st["archived_networks"] = db.archived("networks")
    if args.format == "json":
        print(json.dumps(st, indent=2))
        return 0
    print(f"{st['path']}: {st['layers']} layer keys, {st['measurements']} measurements "
          f"({st['first_measured_at']} .. {st['last_measured_at']})")
    for name in ("by_regime", "by_op", "by_device_key", "by_tvm_version", "sample_configs", "networks"):
        if st[name]:
            print(f"  {name.replace('by_', '')}: " + ", ".join(f"{k}={v}" for k, v in st[name].items()))
    for target, regimes in st["by_target_regime"].items():
        for regime, c in regimes.items():
            parts = [f"{c.get('measurements', 0)} measurements ({c.get('tuned_measurements') or 0} tuned)",
                     f"{c.get('layers', 0)} layer keys"]
            if "sampled_configs" in c:
                parts.append(f"{c['sampled_configs']} sampled configurations")
            if "models" in c:
                parts.append(f"{len(c['models'])} zoo models")
            print(f"  {target}/{regime}: " + ", ".join(parts))
    print(f"  today's fingerprint {today} ({described}):")
    for regime, c in sorted(st["current_vs_stale"].items()):
        print(f"    {regime}: {c['current']} current, {c['stale']} stale, {c['other device']} of other devices")
    for digest, f in st["fingerprints"].items():
        if f["relation"] == "other device":
            print(f"  other device {digest} ({f['describes']}): use with --fingerprint {digest}")
    print(f"  archived: {st['archived']} kernel row(s), {st['archived_networks']} network row(s)")
    return 0


def run_prune(args: argparse.Namespace) -> int:
    if args.network:
        return _prune_network(args)
    fp = _today(args)
    today, described = fp.digest(), fp.describe()
    with _open(args, write=not args.dry_run) as db:
        moved = db.prune_stale(fp, dry_run=args.dry_run)
        archived = db.archived()
    if args.format == "json":
        print(json.dumps({"fingerprint": today, "dry_run": args.dry_run, "moved": moved, "archived": archived},
                         indent=2))
        return 0
    verb = "would move" if args.dry_run else "moved"
    total = sum(moved.values())
    print(f"{verb} {total} stale row(s) to the archive ("
          + (", ".join(f"{r}={n}" for r, n in sorted(moved.items())) or "none") + f"); today's fingerprint "
          f"{today} ({described}); archive holds {archived}")
    return 0


def _prune_network(args: argparse.Namespace) -> int:
    """``db prune --network NAME``: archive one network's rows of today's fingerprint."""
    today = _today(args).digest()
    with _open(args, write=not args.dry_run) as db:
        moved = db.archive_network(args.network, args.regime, today, dry_run=args.dry_run)
    if not any(moved.values()):
        raise HwfaceError(f"no {args.regime} rows of network {args.network!r} under today's fingerprint {today}: "
                          "nothing to archive (see `hwface db stats`)")
    if args.format == "json":
        print(json.dumps({"fingerprint": today, "network": args.network, "regime": args.regime,
                          "dry_run": args.dry_run, "moved": moved}, indent=2))
        return 0
    verb = "would move" if args.dry_run else "moved"
    print(f"{verb} {args.network} ({args.regime}, fingerprint {today}) to the archive: {moved['networks']} "
          f"end-to-end row(s), {moved['measurements']} kernel row(s); the next measuring run of it measures it "
          "again (the shipped data's: `python benchmarks/measure_latency_data.py redo --models "
          f"{args.network}`)")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from hwface.cli.output import emit
    from hwface.latency.consistency import OFF, check_store
    from hwface.latency.lookup import resolve_fingerprint
    from hwface.targets import load_target

    digest = resolve_fingerprint(load_target(args.target), args.fingerprint)
    with _open(args) as db:
        found = check_store(db, digest, args.regime)
    table = [{**asdict(c), "consistent": c.consistent} for c in found]
    if args.format == "json":
        print(json.dumps({"fingerprint": digest, "regime": args.regime, "off": OFF, "networks": table}, indent=2))
        return 0
    emit(table, "table", title=f"{args.regime} networks of {digest}: their kernels over the same keys' median in "
                               "the other networks (scaled to one reference state)")
    bad = [c.network for c in found if c.consistent is False]
    print(f"{len(bad)} of {len(found)} network(s) {OFF:.0%} or more off the others" + (
        f": {', '.join(bad)} (measure again: `hwface db prune --network NAME`, then its command)" if bad else ""))
    return 0


def run_migrate(args: argparse.Namespace) -> int:
    from hwface.latency.store import SCHEMA_VERSION

    with _open(args, write=True) as db:
        before, path = db.migrated_from, str(db.path)
    if args.format == "json":
        print(json.dumps({"path": path, "schema_before": before, "schema": SCHEMA_VERSION}, indent=2))
        return 0
    change = f"schema {before} -> {SCHEMA_VERSION}" if before != SCHEMA_VERSION else f"already schema {SCHEMA_VERSION}"
    print(f"{path}: {change}")
    return 0


def run_query(args: argparse.Namespace) -> int:
    from hwface.cli.output import emit

    where = {}
    for item in args.where:
        col, sep, val = item.partition("=")
        if not sep:
            raise HwfaceError(f"--where takes COL=VALUE, got {item!r}")
        where[col] = val
    if args.layer_key:
        from hwface.latency.key import LayerKey

        where["key"] = LayerKey.from_str(args.layer_key).to_str()
    with _open(args) as db:
        frame = db.frame(regime=args.regime, op=args.op, where=where)
    if args.limit:
        frame = frame.head(args.limit)
    rows = frame.to_dict(orient="records")
    emit(rows, args.format, columns=QUERY_COLUMNS if args.format != "json" else None,
         title=f"{len(rows)} measurement(s), latencies in us")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from hwface.latency.store import export_frame

    with _open(args) as db:
        frame = db.frame(regime=args.regime)
    try:
        out = export_frame(frame, args.output, args.format)
    except OSError as exc:
        raise HwfaceError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    if args.output is None:
        sys.stdout.write(out if out.endswith("\n") else out + "\n")
    else:
        print(f"wrote {len(frame)} measurement(s) to {out}", file=sys.stderr)
    return 0
