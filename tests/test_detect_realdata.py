"""Real pixels: the GEO satellite streak in every BASP science frame is found as ONE streak.

BASP (Loiano 152 cm, 0.57 arcsec/px, 8.02 s, sidereal tracking): a geostationary satellite is
fixed in hour angle, so against the stars it drifts at the sidereal rate, 15.041 arcsec/s times
cos(dec), along RA: at dec -6.7 deg that is 14.94 arcsec/s * 8.02 s / 0.57 arcsec/px = 210 px.
"""

import math

import numpy as np
import pytest
from astropy.io import fits

from aposos.detect import detect

from conftest import realdata

SIDEREAL_ARCSEC_S = 15.041
PIXEL_SCALE_ARCSEC = 0.57


def _bias(folder):
    return np.median([fits.getdata(folder / f"SST20210729_{i}.fit").astype(np.float32)
                      for i in range(101, 111)], axis=0)


def _expected_length_px(header):
    d, m, s = (abs(float(v)) for v in header["DEC"].split(":"))
    dec = math.copysign(d + m / 60 + s / 3600, -1.0 if header["DEC"].strip().startswith("-") else 1.0)
    return SIDEREAL_ARCSEC_S * math.cos(math.radians(dec)) * header["EXPTIME"] / PIXEL_SCALE_ARCSEC


@pytest.fixture(scope="module")
def basp():
    folder = realdata("BASP", "Sample_Images")
    return folder, _bias(folder)


@pytest.mark.parametrize("number", range(113, 122))
def test_basp_satellite_is_one_streak(basp, number):
    folder, bias = basp
    with fits.open(folder / f"SST20210729_{number}.fit") as hdul:
        image = hdul[0].data.astype(np.float32) - bias
        expected = _expected_length_px(hdul[0].header)
    s = detect(image)
    st = s[s["kind"] == "streak"]
    # the satellite: the longest bright streak (a full-height column defect aside)
    cand = st[(st["snr"] > 100) & (st["length_px"] < 0.5 * image.shape[0])]
    sat = cand[np.argmax(cand["length_px"])]
    assert abs(sat["length_px"] - expected) < 0.05 * expected + 5
    assert abs(sat["angle_deg"]) < 2.0  # along the rows (RA) in these frames
    assert sat["end_sigma_px"] < 0.5  # statistical, inflated by the reduced chi^2 of the fit
    # ONE streak: no other streak lies on its line within its length (no broken pieces)
    phi = math.radians(sat["angle_deg"])
    for other in st:
        if other is sat or (other["x"] == sat["x"] and other["y"] == sat["y"]):
            continue
        along = (other["x"] - sat["x"]) * math.cos(phi) + (other["y"] - sat["y"]) * math.sin(phi)
        across = -(other["x"] - sat["x"]) * math.sin(phi) + (other["y"] - sat["y"]) * math.cos(phi)
        assert not (abs(across) < 5 and abs(along) < 0.5 * sat["length_px"])
