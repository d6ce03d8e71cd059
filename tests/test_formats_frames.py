"""Conversions to star-relative ICRS checked against independent code (skyfield, SOFA FK5).

Az/El: skyfield computes where a star appears from a site (its own Earth orientation, the
project's IERS table); the readers must turn that Az/El back into the star's catalogue
position.
"""

import astropy.units as u
import erfa
import numpy as np
import pytest
from astropy.coordinates import FK5, ICRS, EarthLocation, SkyCoord
from astropy.time import Time
from skyfield.api import Star

from aposos import earth
from aposos.errors import AposError
from aposos.formats import read_observations, read_sites
from aposos.formats.fields import encode_angle
from aposos.formats.frames import azel_to_icrs, radec_to_icrs
from aposos.formats.sites import site_lookup
from conftest import realdata

SITE = (52.8344, 6.3785, 10.0)  # station 4171 of the COSPAR list


def _skyfield_altaz(ra_deg, dec_deg, times, site, **refraction):
    observer = earth.ephemeris()["earth"] + earth.skyfield_site(*site)
    az, el = [], []
    for t, ra, dec in zip(times, ra_deg, dec_deg):  # skyfield: one star per call
        star = Star(ra_hours=ra / 15.0, dec_degrees=dec)
        alt_i, az_i, _ = observer.at(earth.skyfield_time(t)).observe(star).apparent().altaz(
            **refraction)
        az.append(az_i.degrees)
        el.append(alt_i.degrees)
    return np.array(az), np.array(el)


def _sep_arcsec(ra1, dec1, ra2, dec2):
    a = SkyCoord(np.asarray(ra1) * u.deg, np.asarray(dec1) * u.deg)
    return a.separation(SkyCoord(np.asarray(ra2) * u.deg, np.asarray(dec2) * u.deg)).arcsec


def _visible_stars(n=60, seed=2):
    rng = np.random.default_rng(seed)
    times = Time("2026-11-21T18:00:00", scale="utc") + rng.uniform(0, 12 * 3600, n) * u.s
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-0.3, 1, n)))
    az, el = _skyfield_altaz(ra, dec, times, SITE)
    keep = el > 20
    return times[keep], ra[keep], dec[keep], az[keep], el[keep]


def test_azel_to_icrs_inverts_skyfield_without_refraction():
    times, ra, dec, az, el = _visible_stars()
    assert len(ra) > 15
    ra2, dec2 = azel_to_icrs(az, el, times, SITE[0], SITE[1], SITE[2],
                             np.ones(len(ra), bool))
    assert np.max(_sep_arcsec(ra, dec, ra2, dec2)) < 0.05


def test_azel_to_icrs_removes_refraction_when_asked():
    times, ra, dec, _, _ = _visible_stars(seed=4)
    pressure = 1013.25 * np.exp(-SITE[2] / 8434.5)
    az, el = _skyfield_altaz(ra, dec, times, SITE, temperature_C=10.0, pressure_mbar=pressure)
    ra2, dec2 = azel_to_icrs(az, el, times, SITE[0], SITE[1], SITE[2],
                             np.zeros(len(ra), bool))
    sep = _sep_arcsec(ra, dec, ra2, dec2)
    # two refraction models above 20 deg: skyfield's Bennett formula (good to ~0.07 arcmin)
    # and ERFA's refco
    assert np.max(sep) < 5.0
    # and ignoring refraction would have been tens of arcsec off
    ra3, dec3 = azel_to_icrs(az, el, times, SITE[0], SITE[1], SITE[2], np.ones(len(ra), bool))
    assert np.median(_sep_arcsec(ra, dec, ra3, dec3)) > 20


def test_iod_azel_line_read_with_sites_mapping(tmp_path):
    times, ra, dec, az, el = _visible_stars(n=20, seed=6)
    lines = []
    for t, a, e in zip(times, az, el):
        stamp = Time(t, precision=3).isot.replace("-", "").replace("T", "").replace(":", "")
        lines.append(f"99999 26 001A   4171 G {stamp.replace('.', '')} 17 45 "
                     f"{encode_angle(a, 'DDDMMSS')}+{encode_angle(e, 'DDMMSS')} 18")
    path = tmp_path / "azel.iod"
    path.write_text("\n".join(lines) + "\n")
    no_site = read_observations(path)
    assert len(no_site) == 0 and len(no_site.meta["rejected"]) == len(lines)
    site = EarthLocation.from_geodetic(SITE[1] * u.deg, SITE[0] * u.deg, SITE[2] * u.m)
    t = read_observations(path, sites={"4171": site})
    assert len(t) == len(lines) and set(t["equinox"]) == {"azel"}
    # 1" digits in Az and El: within 1" of the star (az step shrinks with cos el)
    assert np.max(_sep_arcsec(ra, dec, t["ra_deg"], t["dec_deg"])) < 1.0


def test_of_date_against_astropy_fk5():
    rng = np.random.default_rng(8)
    n = 30
    ra, dec = rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    times = Time("2026-11-21T00:00:00", scale="utc") - rng.uniform(0, 2.4e4, n) * u.day
    ra2, dec2 = radec_to_icrs(ra, dec, "of date", times)
    for i in range(n):  # FK5 (IAU 1976 precession) of equinox t -> ICRS: independent model
        c = SkyCoord(ra[i] * u.deg, dec[i] * u.deg,
                     frame=FK5(equinox=times[i])).transform_to(ICRS())
        assert _sep_arcsec(c.ra.deg, c.dec.deg, ra2[i], dec2[i]) < 0.15


def test_j2050_against_sofa_iau1976_precession():
    rng = np.random.default_rng(9)
    ra, dec = rng.uniform(0, 360, 20), np.degrees(np.arcsin(rng.uniform(-1, 1, 20)))
    ra2, dec2 = radec_to_icrs(ra, dec, "J2050", Time("2026-01-01"))
    p = erfa.pmat76(2400000.5, 69807.0)  # J2000 mean -> mean of J2050.0 (MJD 69807.0 TT)
    r, d = np.radians(ra), np.radians(dec)
    v = np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)], -1) @ p
    ra3 = np.degrees(np.arctan2(v[:, 1], v[:, 0])) % 360
    dec3 = np.degrees(np.arcsin(v[:, 2]))
    # astropy precesses FK5 with Capitaine et al. (2003), SOFA's pmat76 is IAU 1976: they
    # differ by ~0.15" over 50 years; the FK5 -> ICRS frame bias adds ~0.02"
    assert np.max(_sep_arcsec(ra2, dec2, ra3, dec3)) < 0.25
    assert np.min(_sep_arcsec(ra, dec, ra2, dec2)) > 100  # and 50 years of precession moved


def test_read_sites_real_list():
    sites = read_sites(realdata("formats", "cospar_sites.txt"))
    assert len(sites) == 73
    row = sites[sites["code"] == "4171"][0]
    assert (row["lat_deg"], row["lon_deg"], row["height_m"]) == (52.8344, 6.3785, 10.0)
    assert row["observer"] == "Cees Bassa"
    assert site_lookup(sites)["0433"] == (-33.9406, 18.5129, 10.0)


def test_read_sites_reports_bad_line(tmp_path):
    path = tmp_path / "sites.txt"
    path.write_text("# No ID lat lon elev\n4171 CB 52.8 6.37 10 Someone\n9999 XX north 6 1 X\n")
    with pytest.raises(AposError, match=r"sites.txt:3"):
        read_sites(path)
