"""``aposos export``, ``aposos import`` and ``aposos identify``: the exchange-format commands.

The work is done by :mod:`aposos.exchange` (store <-> formats) and :mod:`aposos.identify`;
here are only the argument parsing and the printing. Summaries and rejected records go to
stderr, the product (a file written to stdout, the verdicts) to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np

from ..errors import AposError
from .iod import STATION_RE


def _station_codes(pairs) -> dict[str, str]:
    out = {}
    for pair in pairs or ():
        name, sep, code = pair.partition("=")
        if not sep or not name or not code:
            raise AposError(f"--station-code {pair!r}: expected NAME=CODE (e.g. iran=9001)",
                            key="--station-code")
        out[name] = code
    return out


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and np.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


# --------------------------------------------------------------------------- export

def _cmd_export(args) -> int:
    from ..db import Store
    from ..exchange import export_table, station_sigma_time
    from . import write_iod, write_tdm

    if not os.path.isdir(args.db):
        raise AposError("no such store", path=args.db)
    with Store.open(args.db, "r") as db:
        table = export_table(db, obj=args.object, station=args.station, night=args.night)
    left_out = [f"{table.meta['unlinked']} not in a tracklet"] if table.meta["unlinked"] else []
    stations = sorted(set(np.asarray(table["station"]).astype(str)))
    if args.format == "iod":
        uct = np.asarray(table["norad_id"]) == 0
        if uct.any():
            left_out.append(f"{int(uct.sum())} not identified (IOD needs a NORAD number; "
                            "use --format tdm for UCTs)")
        table = table[~uct]
        stations = sorted(set(np.asarray(table["station"]).astype(str)))
    sigma_t = {s: (station_sigma_time(s, args.sigma_time_s) if args.format == "iod"
                   else _optional_sigma_time(s, args.sigma_time_s)) for s in stations}
    table["sigma_time_s"] = [sigma_t[s] for s in np.asarray(table["station"]).astype(str)]
    suffix = ".xml" if (args.format == "tdm" and args.tdm_xml) else f".{args.format}"
    if args.out and args.format == "tdm" and args.tdm_xml != args.out.lower().endswith(".xml"):
        raise AposError("a TDM is written as XML exactly when the file name ends in .xml: "
                        "use --tdm-xml with an .xml name", path=args.out, key="--out")
    target = args.out or tempfile.mkstemp(suffix=suffix)[1]
    try:
        if len(table) == 0:
            raise AposError("no observations to export" + (" (" + "; ".join(left_out) + ")" if left_out else "")
                            + " for this selection", path=args.db)
        if args.format == "iod":
            codes = _station_codes(args.station_code)
            for s in stations:
                if not STATION_RE.match(codes.get(s, s)):
                    raise AposError(f"station {s!r} has no 4-character IOD code: pass --station-code "
                                    f"{s}=CODE", key="--station-code")
            n = write_iod(table, target, station_codes=codes)
            what = f"{n} IOD lines"
        else:
            n = write_tdm(table, target)
            what = f"{len(table)} observations in {n} TDM segments"
        if not args.out:
            with open(target, encoding="utf-8") as fh:
                sys.stdout.write(fh.read())
    finally:
        if not args.out and os.path.exists(target):
            os.remove(target)
    objects = len(set(np.asarray(table["object_id"]).astype(str)))
    night = f", night = {table.meta['night']}" if table.meta.get("night") else ""
    print(f"exported {what} of {objects} object(s) from {len(stations)} station(s)"
          f"{' to ' + args.out if args.out else ''}{night}"
          + (f"; left out: {'; '.join(left_out)}" if left_out else ""), file=sys.stderr)
    return 0


def _optional_sigma_time(station: str, given):
    from ..exchange import station_sigma_time

    try:
        return station_sigma_time(station, given)
    except AposError:
        return float("nan")  # TDM: the SIGMA comment then says NaN (unknown)


# --------------------------------------------------------------------------- import

def _cmd_import(args) -> int:
    from ..db import Store
    from ..exchange import import_file
    from ..identify import load_catalogs, parse_site

    if not (args.station or args.site or args.sites):
        raise AposError("say where the observations were made: --station NAME, --site "
                        "LAT,LON,HEIGHT_M or --sites FILE", path=args.file)
    catalog = load_catalogs(args.tle) if args.tle else None
    site = parse_site(args.site) if args.site else None
    with Store.open(args.db, "a") as db:
        s = import_file(db, args.file, station=args.station, site=site, sites=args.sites,
                        catalog=catalog, sigma_arcsec=args.sigma_arcsec,
                        config=_identify_config(args))
    _print_rejected(args.file, s["rejected"])
    verdicts = ""
    if catalog is not None:
        verdicts = ", " + ", ".join(f"{s.get(k, 0)} {k}" for k in ("identified", "ambiguous", "uct"))
    added = f"{s['frames_added']} new" if s["frames_added"] else "nothing new (already imported)"
    print(f"{args.file}: {s['records']} records, {len(s['rejected'])} rejected; {added}; "
          f"{s['tracklets']} tracks{verdicts}")
    return 0


def _identify_config(args, correlate=None):
    from ..identify import IdentifyConfig

    kw = {"max_gap_s": args.max_gap_s} if args.max_gap_s else {}
    return IdentifyConfig(**kw, **({"correlate": correlate} if correlate else {}))


def _print_rejected(path, rejected, limit: int = 20) -> None:
    for line, reason in rejected[:limit]:
        print(f"{path}:{line}: rejected: {reason}", file=sys.stderr)
    if len(rejected) > limit:
        print(f"{path}: ... {len(rejected) - limit} more rejected records", file=sys.stderr)


# --------------------------------------------------------------------------- identify

def _cmd_identify(args) -> int:
    from ..correlate import CorrelateConfig
    from ..identify import SiteResolver, fill_sigma, format_text, identify, load_catalogs, parse_site
    from . import read_observations

    table = read_observations(args.file, sites=args.sites)
    _print_rejected(args.file, table.meta["rejected"])
    catalog = load_catalogs(args.tle)
    results = []
    if len(table):
        table = fill_sigma(table, args.sigma_arcsec, args.file)
        if args.sigma_time_s is not None:
            st = np.asarray(table["sigma_time_s"], float)
            table["sigma_time_s"] = np.where(np.isfinite(st) & (st > 0), st, args.sigma_time_s)
        locate = SiteResolver(parse_site(args.site) if args.site else None, args.sites)
        cfg = _identify_config(args, CorrelateConfig(**(
            {"max_age_days": args.max_tle_age_days} if args.max_tle_age_days else {})))
        results = identify(table, catalog, locate, cfg)
    if args.json:
        print(json.dumps(results, indent=1))
    elif results:
        print(format_text(results))
    else:
        print(f"{args.file}: no usable records")
    return 0


# --------------------------------------------------------------------------- registry

def register_cli(subparsers) -> None:
    """Add ``aposos export``, ``aposos import`` and ``aposos identify``."""
    p = subparsers.add_parser("export", help="write store observations as CCSDS TDM or IOD",
                              description="Write the linked observations of a store as a CCSDS TDM "
                              "(KVN, or XML) or as IOD lines. Objects: the NORAD number where the "
                              "tracklet is identified, else the tracklet label (UCT; TDM only).")
    p.add_argument("--db", required=True, metavar="STORE", help="store directory")
    p.add_argument("--format", required=True, choices=("tdm", "iod"))
    p.add_argument("--out", metavar="FILE", help="output file (default: stdout)")
    p.add_argument("--object", metavar="ID", help="NORAD number or tracklet label")
    p.add_argument("--station", metavar="S", help="station name as stored")
    p.add_argument("--night", metavar="YYYY-MM-DD",
                   help="local mean noon to noon at a configured --station, else the UTC date")
    p.add_argument("--tdm-xml", action="store_true", help="TDM in XML (the --out name must end in .xml)")
    p.add_argument("--station-code", action="append", metavar="NAME=CODE",
                   help="4-character IOD station code of a station (repeatable); stations stored "
                   "under a 4-character code keep it")
    p.add_argument("--sigma-time-s", type=_positive, metavar="S",
                   help="time uncertainty (s) for stations whose config has no timing.sigma_s "
                   "(required for IOD)")
    p.set_defaults(func=_cmd_export)

    p = subparsers.add_parser("import", help="add an observation file (IOD/UK/RDE/TDM) to a store",
                              description="Import external observations into a store: one synthetic "
                              "frame per record (key from the file hash and the record line, so a "
                              "second import adds nothing), tracks as tracklets, correlated against "
                              "--tle catalogs when given.")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--db", required=True, metavar="STORE", help="store directory (created if absent)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--station", metavar="NAME", help="configured station that made every record")
    where.add_argument("--site", metavar="LAT,LON,HEIGHT_M", help="observer site of every record")
    p.add_argument("--sites", metavar="FILE", help="COSPAR sites list locating the records' station codes")
    p.add_argument("--tle", action="append", metavar="CATALOG", help="TLE file to correlate with (repeatable)")
    p.add_argument("--sigma-arcsec", type=_positive, metavar="S",
                   help="position uncertainty of records that give none")
    p.add_argument("--max-gap-s", type=_positive, metavar="S",
                   help="a longer gap starts a new track (default: IdentifyConfig, 600)")
    p.set_defaults(func=_cmd_import)

    p = subparsers.add_parser("identify", help="identify the objects of an observation file",
                              description="Cut the records of an observation file into tracks "
                              "(object id, station, time gaps), correlate each against the TLE "
                              "catalogs (per object the epoch nearest the track) and print ranked "
                              "candidates with residuals (observed minus predicted).")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--tle", action="append", required=True, metavar="CATALOG",
                   help="TLE file (repeatable; histories allowed)")
    p.add_argument("--site", metavar="LAT,LON,HEIGHT_M", help="observer site of every record")
    p.add_argument("--sites", metavar="FILE", help="COSPAR sites list locating the records' station codes")
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per track")
    p.add_argument("--sigma-arcsec", type=_positive, metavar="S",
                   help="position uncertainty of records that give none")
    p.add_argument("--sigma-time-s", type=_positive, metavar="S",
                   help="time uncertainty of records that give none (else the correlator's, "
                   "reported as assumed)")
    p.add_argument("--max-gap-s", type=_positive, metavar="S",
                   help="a longer gap starts a new track (default: IdentifyConfig, 600)")
    p.add_argument("--max-tle-age-days", type=_positive, metavar="D",
                   help="element sets further than this from the track are not used "
                   "(default: CorrelateConfig, 30)")
    p.set_defaults(func=_cmd_identify)
