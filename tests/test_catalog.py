import numpy as np
import pytest
from astropy.table import Table
from astropy.time import Time

from aposos import AposError
from aposos.catalog import StarCatalog, gaia, gaia_records


def test_gaia_package_columns_are_bp_rp_not_proper_motion():
    rec = gaia_records()
    barnard = rec[rec["source_id"] == 4472832130942575872][0]
    # Documented as pmra/pmdec (mas/yr); the real motion is -802, +10362 mas/yr.
    assert abs(barnard["bp_mag"] - 9.79) < 0.05 and abs(barnard["rp_mag"] - 6.96) < 0.05
    assert not gaia().has_proper_motion


def test_cone_matches_brute_force():
    cat = gaia()
    ra0, dec0, r = 83.8, -5.4, 2.0
    tab = cat.cone(ra0, dec0, r, mag_limit=9.0)
    ra, dec = np.radians(cat.ra_deg), np.radians(cat.dec_deg)
    cosd = np.sin(np.radians(dec0)) * np.sin(dec) + np.cos(np.radians(dec0)) * np.cos(dec) * np.cos(ra - np.radians(ra0))
    brute = set(cat.source_id[(np.degrees(np.arccos(np.clip(cosd, -1, 1))) <= r) & (cat.mag <= 9.0)])
    assert set(tab["source_id"]) == brute and len(brute) > 20
    assert np.all(np.diff(tab["mag"]) >= 0)


def test_cone_at_the_pole_and_across_ra_zero():
    cat = gaia()
    assert len(cat.cone(0.0, 90.0, 1.0)) > 5
    tab = cat.cone(0.2, 10.0, 1.0)
    assert (tab["ra"] > 359).any() and (tab["ra"] < 1.2).any()


def test_fast_movers_are_flagged():
    tab = gaia().cone(269.4485, 4.7398, 0.05)
    assert tab["fast_mover"][tab["source_id"] == 4472832130942575872][0]


def test_user_catalog_with_proper_motion_moves_stars(tmp_path):
    t = Table({"ra": [10.0], "dec": [0.0], "mag": [12.0], "pmra": [1000.0], "pmdec": [-1000.0]},
              meta={"epoch": 2000.0})
    path = tmp_path / "deep.ecsv"
    t.write(path)
    cat = StarCatalog.from_file(path)
    row = cat.cone(10.0, 0.0, 1.0, epoch=Time(2010.0, format="jyear"))[0]
    assert abs(row["ra"] - (10.0 + 10 / 3600)) < 1e-9 and abs(row["dec"] + 10 / 3600) < 1e-9


def test_user_catalog_missing_column_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.ecsv"
    Table({"ra": [1.0], "dec": [2.0]}).write(path)
    with pytest.raises(AposError, match="mag"):
        StarCatalog.from_file(path)
