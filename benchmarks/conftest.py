"""Benchmarks: collect ``bench_*.py``, share one simulated frame, print a ratio summary.

Run with ``pytest benchmarks -p no:xdist`` (``make bench``). Every timing is reported together
with ratios measured in the same run (the machine is shared: absolute times are noisy).
"""

import pytest

from support import RESULTS, benchmark_frame


def pytest_collect_file(file_path, parent):
    # a file named on the command line is collected by pytest itself: not a second time here
    if (file_path.suffix == ".py" and file_path.name.startswith("bench_")
            and not parent.session.isinitpath(file_path)):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


@pytest.fixture(scope="session")
def frame():
    """(adu float32 4096 x 4096, truth) with ~5000 stars and 5 streaks."""
    return benchmark_frame()


def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    tr = terminalreporter
    floor = RESULTS.get("numpy_floor", {}).get("median_s")
    sep_t = RESULTS.get("sep", {}).get("median_s")
    mpix = 4096 * 4096 / 1e6
    tr.section("detection benchmark summary (4096 x 4096, medians of this run)")
    tr.write_line(f"{'method':22s} {'time s':>9s} {'frames/s':>9s} {'Mpix/s':>9s} {'x floor':>8s} "
                  f"{'x SEP':>7s} {'c>=10':>6s} {'c5-10':>6s} {'n':>6s}")
    for name, info in RESULTS.items():
        t = info["median_s"]
        tr.write_line(
            f"{name:22s} {t:9.4f} {1 / t:9.2f} {mpix / t:9.1f} "
            f"{t / floor if floor else float('nan'):8.1f} "
            f"{t / sep_t if sep_t else float('nan'):7.2f} "
            f"{info.get('compl_snr10', float('nan')):6.3f} "
            f"{info.get('compl_snr5_10', float('nan')):6.3f} {info.get('n', ''):>6}")
