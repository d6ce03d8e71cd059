"""The night report: one self-contained HTML page (plots embedded) from the observation store.

``aposos report --db STORE --night YYYY-MM-DD --out DIR`` writes ``DIR/report-<night>.html``.
The night is the 36 h from 12:00 UTC of the day before to 00:00 UTC of the day after the
given date, so that the evening of every station (Iran, Pakistan: UTC+3.5/+5; Peru: UTC-5)
falls in it.

Sections: counts; sky map of observations per station; astrometric RMS and catalog stars per
frame; along/cross-track residuals of identified objects; per-station timing-bias estimate;
identified vs ambiguous vs UCT per station; failed frames with their reasons.

Timing bias: a station clock that stamps frames ``dt`` late makes every object appear
*behind* its prediction by ``rate * dt``. From each identified tracklet,
``dt = -along_track_arcsec / rate_arcsec_s`` (rate from the tracklet's own observations);
the report gives the per-station median and its standard error. Good TLEs are a few km off
along track, so in LEO this resolves tens of milliseconds per tracklet.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Table
from astropy.time import Time

from .errors import AposError

STATION_COLOURS = {"iran": "#1b9e77", "pakistan": "#d95f02", "peru": "#7570b3"}


def night_interval(night: str) -> tuple[Time, Time]:
    """UTC interval of a night given as ``YYYY-MM-DD`` (see the module docstring)."""
    try:
        day = Time(f"{night}T00:00:00", scale="utc")
    except ValueError:
        raise AposError(f"night {night!r} is not a date YYYY-MM-DD", key="--night") from None
    return day - 0.5 * u.day, day + 1.0 * u.day


def _figure_png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _colour(station: str) -> str:
    return STATION_COLOURS.get(station, "#444444")


def timing_bias(residuals: Table) -> Table:
    """Per-station clock-bias estimate from identified tracklets.

    ``residuals`` needs ``station``, ``along_track_arcsec`` and ``rate_arcsec_s``. Returns
    ``station``, ``n``, ``bias_s`` (median of ``-along / rate``, positive: time stamps late)
    and ``sigma_s`` (1.2533 * MAD-based sigma / sqrt(n)).
    """
    rows = []
    for st in sorted(set(residuals["station"])):
        sel = residuals[(residuals["station"] == st) & (residuals["rate_arcsec_s"] > 0)]
        dt = -np.asarray(sel["along_track_arcsec"], float) / np.asarray(sel["rate_arcsec_s"], float)
        dt = dt[np.isfinite(dt)]
        if len(dt) == 0:
            continue
        med = float(np.median(dt))
        sigma = 1.4826 * float(np.median(np.abs(dt - med))) if len(dt) > 2 else np.nan
        rows.append((st, len(dt), med, 1.2533 * sigma / np.sqrt(len(dt))))
    return Table(rows=rows, names=("station", "n", "bias_s", "sigma_s"), dtype=(str, int, float, float))


def gather(db, start: Time, end: Time) -> dict:
    """Everything the report shows, as Tables (pure reads of the store)."""
    from .db import query

    frames = query.frames(db, start=start, end=end)
    # frames that failed before their time was read belong to the night through their run
    everything = query.frames(db)
    untimed = everything[everything["t_start"].mask] if hasattr(everything["t_start"], "mask") else everything[:0]
    if len(untimed):
        from astropy.table import vstack

        frames = vstack([frames, untimed[np.isin(untimed["run_id"], np.unique(frames["run_id"]))]])
    obs = query.observations(db, start=start, end=end)
    corr = query.correlations(db)
    trk = query.tracklets(db)
    ids = set(np.asarray(obs["tracklet_id"])) - {0} if len(obs) else set()
    trk = trk[np.isin(trk["tracklet_id"], list(ids))] if len(trk) else trk
    corr = corr[np.isin(corr["tracklet_id"], list(ids))] if len(corr) else corr
    return {"frames": frames, "observations": obs, "tracklets": trk, "correlations": corr,
            "residuals": _residuals(obs, corr, trk)}


def _tracklet_rate_arcsec_s(obs: Table) -> dict:
    """Mean angular rate (arcsec/s) of each tracklet from its first and last observation."""
    from .directions import unit_from_radec

    rates = {}
    linked = obs[obs["tracklet_id"] != 0] if len(obs) else obs
    for tid in np.unique(linked["tracklet_id"]) if len(linked) else []:
        o = linked[linked["tracklet_id"] == tid]
        o = o[np.argsort(o["time"].mjd)]
        dt = (o["time"][-1] - o["time"][0]).to_value("s")
        if dt <= 0:
            continue
        u0, u1 = unit_from_radec(o["ra_deg"][0], o["dec_deg"][0]), unit_from_radec(o["ra_deg"][-1], o["dec_deg"][-1])
        rates[int(tid)] = np.degrees(np.arctan2(np.linalg.norm(np.cross(u0, u1)), u0 @ u1)) * 3600.0 / dt
    return rates


def _residuals(obs: Table, corr: Table, trk: Table) -> Table:
    """Identified tracklets with station, residuals and rate."""
    names = ("tracklet_id", "station", "norad_id", "along_track_arcsec", "cross_track_arcsec", "rate_arcsec_s")
    if not len(corr):
        return Table(names=names, dtype=(np.int64, str, np.int64, float, float, float))
    rates = _tracklet_rate_arcsec_s(obs)
    station_of = {int(t): s for t, s in zip(trk["tracklet_id"], trk["station"])}
    ident = corr[(corr["status"] == "identified") & (corr["rank"] == 0)] if "rank" in corr.colnames else \
        corr[corr["status"] == "identified"]
    rows = [(int(r["tracklet_id"]), station_of.get(int(r["tracklet_id"]), ""), int(r["norad_id"]),
             float(r["along_track_arcsec"]), float(r["cross_track_arcsec"]),
             rates.get(int(r["tracklet_id"]), np.nan)) for r in ident]
    return Table(rows=rows, names=names, dtype=(np.int64, str, np.int64, float, float, float))


def _plots(data: dict) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames, obs, res, corr = data["frames"], data["observations"], data["residuals"], data["correlations"]
    stations = sorted(set(frames["station"])) if len(frames) else []
    out = {}

    fig, ax = plt.subplots(figsize=(7, 4))
    for st in stations:
        o = obs[obs["station"] == st] if len(obs) else obs
        ax.scatter(o["ra_deg"], o["dec_deg"], s=6, color=_colour(st), label=f"{st} ({len(o)})")
    ax.set_xlabel("RA (deg)")
    ax.set_ylabel("Dec (deg)")
    ax.invert_xaxis()
    ax.set_title("Observations (star-relative ICRF)")
    if stations:
        ax.legend(fontsize=8)
    out["sky"] = _figure_png(fig)

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.2))
    ok = frames[frames["status"] == "ok"] if len(frames) else frames
    for st in stations:
        f = ok[ok["station"] == st]
        if len(f):
            hours = (f["t_mid"] - f["t_mid"].min()).to_value("h") if len(f) > 1 else np.zeros(len(f))
            a1.plot(hours, f["astrometric_rms_arcsec"], "o", color=_colour(st), label=st)
            a2.plot(hours, f["n_stars"], "o", color=_colour(st), label=st)
    a1.set_xlabel("hours since first frame")
    a1.set_ylabel("plate RMS (arcsec)")
    a2.set_xlabel("hours since first frame")
    a2.set_ylabel("catalog stars matched")
    a1.set_title("Astrometric RMS per frame")
    a2.set_title("Stars per frame")
    out["astrometry"] = _figure_png(fig)

    fig, ax = plt.subplots(figsize=(5, 4))
    for st in sorted(set(res["station"])):
        r = res[res["station"] == st]
        ax.scatter(r["along_track_arcsec"], r["cross_track_arcsec"], s=14, color=_colour(st), label=st)
    ax.axhline(0, color="0.7", lw=0.8)
    ax.axvline(0, color="0.7", lw=0.8)
    ax.set_xlabel("along track (arcsec)")
    ax.set_ylabel("cross track (arcsec)")
    ax.set_title("Residuals of identified objects (obs - TLE)")
    if len(res):
        ax.legend(fontsize=8)
    out["residuals"] = _figure_png(fig)

    fig, ax = plt.subplots(figsize=(6, 3.2))
    statuses = ("identified", "ambiguous", "uct")
    trk = data["tracklets"]
    station_of = {int(t): s for t, s in zip(trk["tracklet_id"], trk["station"])} if len(trk) else {}
    corr0 = corr[corr["rank"] == 0] if len(corr) and "rank" in corr.colnames else corr
    width = 0.8 / max(len(statuses), 1)
    for k, status in enumerate(statuses):
        counts = [sum(1 for c in corr0 if c["status"] == status and station_of.get(int(c["tracklet_id"])) == st)
                  for st in stations]
        ax.bar(np.arange(len(stations)) + k * width, counts, width, label=status)
    ax.set_xticks(np.arange(len(stations)) + width)
    ax.set_xticklabels(stations)
    ax.set_ylabel("tracklets")
    ax.set_title("Correlation outcome per station")
    ax.legend(fontsize=8)
    out["outcome"] = _figure_png(fig)
    return out


def _table_html(table: Table, columns, formats=None) -> str:
    formats = formats or {}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in table:
        cells = []
        for c in columns:
            v = row[c]
            text = formats[c](v) if c in formats else str(v)
            cells.append(f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_html(data: dict, night: str) -> str:
    """The report page (self-contained: CSS inline, plots as data URIs, no scripts)."""
    frames, obs, corr = data["frames"], data["observations"], data["correlations"]
    plots = _plots(data)
    bias = timing_bias(data["residuals"])
    n_ok = int(np.sum(frames["status"] == "ok")) if len(frames) else 0
    n_failed = len(frames) - n_ok
    corr0 = corr[corr["rank"] == 0] if len(corr) and "rank" in corr.colnames else corr
    counts = {s: int(np.sum(corr0["status"] == s)) if len(corr0) else 0 for s in ("identified", "ambiguous", "uct")}
    failed = frames[frames["status"] != "ok"] if len(frames) else frames
    img = lambda key, alt: f'<img alt="{alt}" src="data:image/png;base64,{plots[key]}">'  # noqa: E731
    bias_html = _table_html(bias, ("station", "n", "bias_s", "sigma_s"),
                            {"bias_s": lambda v: f"{v * 1e3:+.1f} ms", "sigma_s": lambda v: f"{v * 1e3:.1f} ms"}) \
        if len(bias) else "<p>No identified tracklets with a measurable rate.</p>"
    failed_html = _table_html(failed, ("station", "path", "reason"), {"path": lambda v: Path(str(v)).name}) \
        if len(failed) else "<p>None.</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>APOSOS night report {html.escape(night)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
h1 {{ font-size: 1.5em; }} h2 {{ font-size: 1.15em; margin-top: 1.6em; }}
table {{ border-collapse: collapse; font-size: 0.9em; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; }}
.counts span {{ display: inline-block; margin-right: 1.5em; }} img {{ max-width: 100%; }}
</style></head><body>
<h1>APOSOS night report: {html.escape(night)}</h1>
<p class="counts"><span>frames: {n_ok} ok, {n_failed} failed</span><span>observations: {len(obs)}</span>
<span>identified: {counts['identified']}</span><span>ambiguous: {counts['ambiguous']}</span>
<span>UCT: {counts['uct']}</span></p>
<h2>Sky map</h2>{img('sky', 'sky map of observations per station')}
<h2>Astrometry per frame</h2>{img('astrometry', 'astrometric RMS and stars per frame')}
<h2>Residuals of identified objects</h2>{img('residuals', 'along and cross track residuals')}
<h2>Timing bias per station</h2>
<p>From along-track residuals of identified tracklets: dt = -along / rate (positive: time stamps late).</p>
{bias_html}
<h2>Identified and uncorrelated</h2>{img('outcome', 'correlation outcome per station')}
<h2>Failed frames</h2>{failed_html}
<p><small>aposos report, generated {Time.now().utc.isot[:19]} UTC.</small></p>
</body></html>
"""


def write_report(store, night: str, out_dir) -> Path:
    """Write ``out_dir/report-<night>.html`` for the night; returns its path."""
    from .db import Store

    start, end = night_interval(night)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with Store.open(store, "r") as db:
        data = gather(db, start, end)
    if len(data["frames"]) == 0:
        raise AposError(f"no frames of the night {night} in the store", path=store)
    path = out / f"report-{night}.html"
    path.write_text(render_html(data, night), encoding="utf-8")
    return path


def _cmd_report(args) -> int:
    path = write_report(args.db, args.night, args.out)
    print(path)
    return 0


def register_cli(sub):
    p = sub.add_parser("report", help="write the HTML night report from the store")
    p.add_argument("--db", required=True, help="observation store")
    p.add_argument("--night", required=True, help="night as YYYY-MM-DD (see aposos.report)")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_cmd_report)
