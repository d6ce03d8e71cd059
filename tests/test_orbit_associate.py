"""Association of UCT tracklets across stations against truth (tests/orbit_truth.py)."""

import numpy as np
import pytest

import orbit_truth as ot
from aposos.orbit import determine_orbit
from aposos.orbit.associate import associate


@pytest.fixture(scope="module")
def night():
    return ot.small_mixed_night()


def test_mixed_night_association(night):
    trs, truth, _ = night
    res = associate(trs, determine=True)
    frac, wrong = ot.association_score(res.object_of, truth)
    print(f"association: {frac:.1%} of {len(trs)} tracklets to the right object, {wrong} to a wrong one, "
          f"{len(res.objects)} objects from {len(set(truth))}, {res.pairs_fitted} pairs tested")
    assert wrong == 0
    assert frac >= 0.95
    # one object per truth object, each with an orbit and a TLE
    assert len(res.objects) == len(set(truth))
    assert all(s.determined and s.rms_arcsec < 1.6 for s in res.solutions), [s.reason for s in res.solutions]


def test_associated_leo_object_gets_an_orbit(night):
    trs, truth, sats = night
    k = int(truth[0])
    sol = determine_orbit([t for t, o in zip(trs, truth) if o == k])
    assert sol.determined, sol.reason
    assert sol.rms_arcsec < 2.0


@pytest.mark.parametrize("k", [3, 4])
def test_leo_across_revolutions_iran_peru(night, k):
    """Iran and Peru see a LEO object 6-10 h (4-6 revolutions) apart: the arc growth finds the
    revolution count and the 12 h prediction stays within 2 km."""
    import astropy.units as u
    from astropy.time import Time

    trs, truth, sats = night
    sel = sorted((t for t, o in zip(trs, truth) if o == k and t["station"][0] in ("iran", "peru")),
                 key=lambda t: t["time"][0].jd)
    assert {t["station"][0] for t in sel} == {"iran", "peru"}
    span_h = (Time(sel[-1]["time"][-1]) - Time(sel[0]["time"][0])).to_value(u.h)
    sol = determine_orbit(sel)
    assert sol.determined, sol.reason
    later = (Time(sel[-1]["time"][-1]) + 12 * u.h).reshape(1)
    err_km = ot.separation_km(sol.satrec, sats[k], later)[0]
    print(f"LEO {k} iran+peru over {span_h:.1f} h: rms {sol.rms_arcsec:.2f} arcsec, 12 h error {err_km:.2f} km")
    assert span_h > 5
    assert err_km < 2.0


@pytest.mark.slow
def test_close_geo_pair_is_left_unassociated_not_mixed():
    """Two GEO objects 0.2 deg apart seen from one station, tracklets 5 min apart: any three
    tracklets fit some orbit, so the association must refuse rather than mix them."""
    import astropy.units as u
    from astropy.time import Time

    t0 = Time("2026-11-20T12:00:00", scale="utc")
    rng = np.random.default_rng(3)
    sats = [ot.satellite(t0, 1.00273, 0.0003, 0.05, 0.0, 100, 200),
            ot.satellite(t0, 1.00273, 0.0005, 0.10, 0.2, 100, 200)]
    trs, truth = [], []
    for k, sat in enumerate(sats):
        for s in ot.pick_starts(ot.visibility(sat, "iran", t0), 3, 3600):
            trs.append(ot.tracklet(sat, "iran", s + k * 300 * u.s, rng))
            truth.append(k)
    res = associate(trs)
    _, wrong = ot.association_score(res.object_of, np.array(truth))
    assert wrong == 0
