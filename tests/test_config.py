import pytest

from aposos import AposError
from aposos.config import STATIONS_DIR, load_station, load_stations, read_toml


def test_three_stations_load_with_distinct_cameras_and_dialects():
    stations = load_stations()
    assert set(stations) == {"iran", "pakistan", "peru"}
    shapes = {s.shape for s in stations.values()}
    dialects = {s.header["dialect"] for s in stations.values()}
    assert len(shapes) == 3 and len(dialects) == 3
    # 15 cm refractors with a 750 mm focal length: 2.5-3.7 arcsec per pixel
    for s in stations.values():
        assert s.telescope["aperture_mm"] == 150.0
        assert 2.0 < s.pixel_scale_arcsec < 4.0


def test_station_location_is_exact_wgs84():
    iran = load_station("iran")
    lon, lat, h = iran.location.to_geodetic("WGS84")
    assert abs(lat.deg - 35.7319) < 1e-9 and abs(lon.deg - 50.8346) < 1e-9 and abs(h.value - 1210.0) < 1e-6


def _write(tmp_path, text):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


def _mutated(drop=None, replace=None):
    text = (STATIONS_DIR / "iran.toml").read_text()
    lines = text.splitlines()
    if drop:
        lines = [l for l in lines if not l.startswith(drop)]
    if replace:
        old, new = replace
        lines = [new if l.startswith(old) else l for l in lines]
    return "\n".join(lines)


@pytest.mark.parametrize(
    "text, key, problem",
    [
        (_mutated(drop="latitude_deg"), "station.latitude_deg", "missing key"),
        (_mutated(replace=("width_px", 'width_px = "4096"')), "camera.width_px", "expected int"),
        (_mutated(replace=("latitude_deg", "latitude_deg = 135.0")), "station.latitude_deg", "out of range"),
        (_mutated(replace=("date_obs_refers_to", 'date_obs_refers_to = "begin"')), "timing.date_obs_refers_to", "out of range"),
        (_mutated(replace=("gain_e_per_adu", "gain_adu = 1.5")), "camera.gain_adu", "unknown key"),
        (_mutated(replace=("[header]", "[headers]")), "[headers]", "unknown key"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path, text, key, problem):
    path = _write(tmp_path, text)
    with pytest.raises(AposError) as info:
        load_station(path)
    msg = str(info.value)
    assert str(path) in msg and key in msg


def test_toml_syntax_error_names_file(tmp_path):
    path = _write(tmp_path, "[station\nname = 1")
    with pytest.raises(AposError, match="not valid TOML"):
        read_toml(path)


def test_unknown_station_lists_the_configured_ones():
    with pytest.raises(AposError, match="iran, pakistan, peru"):
        load_station("chile")
