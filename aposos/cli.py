"""The ``aposos`` command.

Each subcommand lives in a small ``_cmd_*`` function; user errors (:class:`AposError`) are
printed as one line on stderr with exit code 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys

from . import __version__
from .errors import AposError

log = logging.getLogger("aposos")


def _cmd_stations(args) -> int:
    from .config import load_stations

    for name, st in load_stations().items():
        ny, nx = st.shape
        print(f"{name:10s} lat {st.lat_deg:+.6f} lon {st.lon_deg:+.6f} h {st.height_m:7.1f} m  "
              f"{nx}x{ny} px  {st.pixel_scale_arcsec:.3f} arcsec/px  dialect {st.header['dialect']}"
              + ("" if st.station["position_confirmed"] else "  (position to be confirmed)"))
    return 0


def _cmd_demo(args) -> int:
    from .earth import iers_status

    print(iers_status().describe())
    _cmd_stations(args)
    try:
        from .pipeline import run_demo
    except ImportError:
        print("The night pipeline is not built yet: demo stops after the set-up checks.")
        return 0
    return run_demo(args.out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aposos", description="APOSOS reduction pipeline")
    parser.add_argument("--version", action="version", version=f"aposos {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    parser.add_argument("--log-format", choices=("text", "json"), default="text",
                        help="log lines as text or as JSON objects, one per line (stderr)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("stations", help="list the configured stations")
    p.set_defaults(func=_cmd_stations)

    p = sub.add_parser("demo", help="reduce the bundled sample night and print a summary")
    p.add_argument("--out", default="demo_output", help="folder for the database and outputs")
    p.set_defaults(func=_cmd_demo)

    for register in _extensions():
        register(sub)
    return parser


def _extensions():
    """Subcommands contributed by other modules (each has ``register_cli(subparsers)``)."""
    import importlib

    for name in ("aposos.simulate.cli", "aposos.pipeline", "aposos.db.cli", "aposos.orbit.uct", "aposos.formats.cli",
                 "aposos.report"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # that part of the package does not exist yet
            raise
        register = getattr(module, "register_cli", None)
        if register is not None:
            yield register


class JsonLines(logging.Formatter):
    """One JSON object per record: time (UTC ISO), level, logger, message, and any ``extra`` fields."""

    _standard = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)))

    def format(self, record):
        import datetime
        import json

        out = {"time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc).isoformat(),
               "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        out.update({k: v for k, v in vars(record).items() if k not in self._standard and k != "message"})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def _configure_logging(verbose: int, fmt: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines() if fmt == "json" else logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(logging.WARNING - 10 * verbose, logging.DEBUG))


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose, args.log_format)
    try:
        return int(args.func(args) or 0)
    except AposError as exc:
        print(f"aposos: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
