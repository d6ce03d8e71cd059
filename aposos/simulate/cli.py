"""``aposos simulate``: the sample night, or one frame of one station.

Examples::

    aposos simulate --sample-night data_samples
    aposos simulate --station iran --time 2026-11-20T16:00:00 --exposure 5 \\
        --ra 355.7 --dec -5.8 --tles data_samples/truth_tles.txt --out frame.fits --truth frame.ecsv
    aposos simulate --station peru --time 2026-11-21T01:42:05 --exposure 5 --rate-track 70006 \\
        --tles data_samples/truth_tles.txt --out rate.fits
"""

from __future__ import annotations

from ..errors import AposError


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("simulate", help="render simulated frames with truth tables",
                              description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--sample-night", metavar="DIR", help="write the sample night of the three stations into DIR")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the sample night's)")
    p.add_argument("--station", help="station name (one frame mode)")
    p.add_argument("--time", help="shutter-open instant, ISO UTC")
    p.add_argument("--exposure", type=float, default=5.0, help="exposure, s")
    p.add_argument("--ra", type=float, help="pointing RA, deg (default: on the target)")
    p.add_argument("--dec", type=float, help="pointing Dec, deg")
    p.add_argument("--tles", help="3LE file of the objects in the sky")
    p.add_argument("--target", type=int, help="NORAD number of the object aimed at")
    p.add_argument("--rate-track", type=int, metavar="NORAD", help="follow this object (rate-tracked frame)")
    p.add_argument("--size", type=int, default=None, help="window size in binned px (default: whole chip; 640 for the sample night)")
    p.add_argument("--out", help="FITS file to write (station dialect)")
    p.add_argument("--truth", help="ECSV truth table to write")
    p.set_defaults(func=_cmd_simulate)


def _cmd_simulate(args) -> int:
    if args.sample_night:
        from .night import SEED, write_sample_night

        kwargs = {"shape": (args.size, args.size)} if args.size else {}
        index = write_sample_night(args.sample_night, seed=SEED if args.seed is None else args.seed, **kwargs)
        print(f"wrote {len(index)} frames of {len(set(index['station']))} stations to {args.sample_night}")
        return 0
    if not (args.station and args.time and args.out):
        raise AposError("give --sample-night DIR, or --station, --time and --out for one frame")
    return _one_frame(args)


def _one_frame(args) -> int:
    from astropy.time import Time

    from ..ingest import write_frame
    from . import tles as tle_mod
    from .frames import simulate_frame

    try:
        t0 = Time(args.time, scale="utc")
    except ValueError as exc:
        raise AposError(f"cannot read --time {args.time!r}: {exc}") from None
    catalog = tle_mod.read_catalog(args.tles) if args.tles else []
    wanted = args.rate_track or args.target
    target = None
    if wanted is not None:
        found = [t for t in catalog if t.norad == wanted]
        if not found:
            raise AposError(f"NORAD {wanted} is not in the TLE file", path=args.tles)
        target = found[0]
    if target is None and (args.ra is None or args.dec is None):
        raise AposError("give --ra and --dec, or a --target / --rate-track object")
    shape = (args.size, args.size) if args.size else None
    frame, truth = simulate_frame(args.station, t0, args.exposure, args.ra, args.dec,
                                  tracking="rate" if args.rate_track else "sidereal", tles=catalog, target=target,
                                  seed=args.seed or 0, shape=shape)
    path = write_frame(args.out, frame, args.station)
    if args.truth:
        truth.write(args.truth, format="ascii.ecsv", overwrite=True)
    sats = truth[truth["kind"] == "satellite"]
    print(f"wrote {path}: {int((truth['kind'] != 'satellite').sum())} stars, {int(sats['on_image'].sum())} satellites")
    return 0
