"""``aposos db ...`` subcommands."""

from __future__ import annotations

import json


def _cmd_summary(args) -> int:
    from .store import Store

    with Store.open(args.store, "r") as db:
        counts = db.summary()
    if args.json:
        print(json.dumps(counts))
    else:
        width = max(len(k) for k in counts)
        print(f"store {db.root} (schema {db.manifest['schema_version']})")
        for k, v in counts.items():
            print(f"  {k:<{width}s} {v:>12d}")
    return 0


def _cmd_compact(args) -> int:
    from .store import Store

    with Store.open(args.store, "a") as db:
        n = db.compact()
    print(f"compacted {n} segments into 1" if n else "nothing to compact")
    return 0


def _cmd_merge(args) -> int:
    from .store import Store

    with Store.open(args.store, "a") as db:
        for other in args.other:
            added = db.merge(other)
            print(f"{other}: " + ", ".join(f"{k} +{v}" for k, v in added.items() if v)
                  if any(added.values()) else f"{other}: nothing new")
    return 0


def register_cli(subparsers) -> None:
    """Add ``aposos db summary|compact|merge`` to the aposos command."""
    p = subparsers.add_parser("db", help="the observation database")
    sub = p.add_subparsers(dest="db_command", required=True)
    s = sub.add_parser("summary", help="count the rows of every table")
    s.add_argument("store", metavar="STORE", help="store directory")
    s.add_argument("--json", action="store_true", help="print a flat JSON object of counts")
    s.set_defaults(func=_cmd_summary)
    s = sub.add_parser("compact", help="merge the store's segments into one")
    s.add_argument("store", metavar="STORE")
    s.set_defaults(func=_cmd_compact)
    s = sub.add_parser("merge", help="add other stores' results (e.g. other stations)")
    s.add_argument("store", metavar="STORE")
    s.add_argument("other", nargs="+", metavar="OTHER")
    s.set_defaults(func=_cmd_merge)
