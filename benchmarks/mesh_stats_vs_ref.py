"""The background kernel ``mesh_stats`` of the working tree against the same kernel at a git ref,
interleaved in one process (best and median of N calls, per thread count), on bench_detect's
4096 x 4096 frame, with the largest differences of their results.

    PYTHONPATH=. python benchmarks/mesh_stats_vs_ref.py [REF [N [THREADS]]]   # main 20 1,2

The machine is shared and noisy: compare ratios from the same run, not times across runs.
"""

import importlib
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from support import ROOT, benchmark_frame  # noqa: E402

FRAME = Path(tempfile.gettempdir()) / "aposos_bench_frame_4096.npy"


def module_at(ref):
    """aposos.detect.background as of git ``ref``, imported under another name."""
    src = subprocess.run(["git", "show", f"{ref}:aposos/detect/background.py"], cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "background_ref.py"
    path.write_text(src.replace("from ..errors", "from aposos.errors"))
    spec = importlib.util.spec_from_file_location("background_ref", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # (its dataclass looks itself up there)
    spec.loader.exec_module(mod)
    return mod


def main(ref="main", n=20, threads="1,2"):
    if not FRAME.exists():
        np.save(FRAME, benchmark_frame(shape=(4096, 4096), n_stars=5000)[0])
    adu = np.load(FRAME)
    new = importlib.import_module("aposos.detect.background")
    old = module_at(ref)
    edges = new.box_edges(adu.shape[0], 64), new.box_edges(adu.shape[1], 64)
    args = (adu, *edges, 3.0, 10, 0.5, 1)
    ro, rn = old.mesh_stats(*args), new.mesh_stats(*args)
    print(f"counts differing: {(ro[2] != rn[2]).sum()} of {ro[2].size}; max |diff| / std: "
          f"back {np.nanmax(np.abs(ro[0] - rn[0]) / ro[1]):.1e}, "
          f"std {np.nanmax(np.abs(ro[1] - rn[1]) / ro[1]):.1e}")
    for nt in [int(t) for t in str(threads).split(",")]:
        numba.set_num_threads(nt)
        times = {"ref": [], "new": []}
        for _ in range(int(n)):
            for name, mod in (("ref", old), ("new", new)):
                t0 = time.perf_counter()
                mod.mesh_stats(*args)
                times[name].append(time.perf_counter() - t0)
        best = {k: min(v) * 1e3 for k, v in times.items()}
        med = {k: np.median(v) * 1e3 for k, v in times.items()}
        print(f"{nt} thread(s): {ref} {best['ref']:.2f} ms (median {med['ref']:.2f}), "
              f"new {best['new']:.2f} ms (median {med['new']:.2f}); new/{ref}: best "
              f"{best['new'] / best['ref']:.3f}, median {med['new'] / med['ref']:.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
