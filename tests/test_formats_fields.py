"""Fixed-column codecs: sexagesimal layouts with partial precision, MX uncertainty codes."""

import numpy as np
import pytest
from astropy.coordinates import Angle

from aposos.formats.fields import (FieldError, decode_angle, encode_angle, layout_ulp_deg,
                                   left_digits, mx_code, mx_value)


@pytest.mark.parametrize("digits, layout, expected", [
    ("0047196", "HHMMSSs", "00h47m19.6s"),
    ("1256405", "HHMMmmm", "12h56.405m"),
    ("13221893", "HHMMmmmm", "13h22.1893m"),
    ("11203617", "HHMMSSss", "11h20m36.17s"),
    ("0047", "HHMMSSs", "00h47m"),          # partial precision: missing digits are zeros
    ("00471", "HHMMSSs", "00h47m10s"),
    ("1", "HHMMSSs", "10h"),
    ("603829", "DDMMSS", "60d38m29s"),
    ("515478", "DDMMmm", "51d54.78m"),
    ("119509", "DDdddd", "11.9509d"),
    ("1835301", "DDDMMSS", "183d53m01s"),
    ("1835170", "DDDMMmm", "183d51.70m"),
    ("0214030", "DDDdddd", "21.4030d"),
    ("15635865", "DDDMMmmm", "156d35.865m"),
])
def test_decode_matches_astropy_angle(digits, layout, expected):
    assert decode_angle(digits, layout, "x") == pytest.approx(Angle(expected).deg, abs=1e-10)


@pytest.mark.parametrize("digits, layout", [("1199", "DDMMmm"), ("172038", "DDDMMSSs"),
                                            ("2500000", "HHMMSSs"), ("006000", "DDMMSS")])
def test_decode_rejects_out_of_range_fields(digits, layout):
    with pytest.raises(FieldError):
        decode_angle(digits, layout, "x")


@pytest.mark.parametrize("layout", ["HHMMSSs", "HHMMmmm", "DDMMSS", "DDMMmm", "DDdddd",
                                    "DDDMMSS", "HHMMSSss", "DDMMSSs", "DDDddddd"])
def test_encode_decode_round_trip_within_half_ulp(layout):
    rng = np.random.default_rng(3)
    top = 359.9 if layout[0] == "H" or layout.startswith("DDD") else 89.9
    ulp = layout_ulp_deg(layout)
    for value in rng.uniform(0, top, 500):
        back = decode_angle(encode_angle(value, layout), layout, "x")
        assert abs(back - value) <= ulp / 2 + 1e-12


def test_encode_carries_rounding_into_minutes_hours_and_wraps_ra():
    assert encode_angle(Angle("10h59m59.96s").deg, "HHMMSSs") == "1100000"
    assert encode_angle(Angle("23h59m59.97s").deg, "HHMMSSs") == "0000000"
    assert encode_angle(Angle("12d59.996m").deg, "DDMMmm") == "130000"


def test_left_justified_fields():
    assert left_digits("2008112211  ", "t", 8) == "2008112211"
    for bad, why in [(" 12345", "leading blank"), ("12 45", "blank between"),
                     ("12A4", "not digits"), ("2008112 ", "at least 8")]:
        with pytest.raises(FieldError, match=why):
            left_digits(bad, "t", 8 if why == "at least 8" else 1)


def test_mx_codes_follow_m_times_ten_to_x_minus_8():
    assert mx_value("18", "t") == 1.0
    assert mx_value("17", "t") == pytest.approx(0.1)
    assert mx_value("56", "t") == pytest.approx(0.05)
    assert mx_value("39", "t") == pytest.approx(30.0)
    assert mx_code(0.1) == "17"
    assert mx_code(1.8) == "28"       # nearest representable, not a constant
    assert mx_code(2.6) == "38"
    assert mx_code(0.0012) == "15"
    for sigma in np.geomspace(1e-8, 90, 300):
        value = mx_value(mx_code(sigma), "t")
        assert 1 / 1.5 <= value / sigma <= 1.5  # within half a step of the 1-9 mantissa
    with pytest.raises(ValueError):
        mx_code(500.0)  # not representable: never clipped silently
    with pytest.raises(FieldError):
        mx_value(" 7", "t")
