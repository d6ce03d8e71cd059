"""A 10k x 10k frame: detection gives a result within a few frame-sized buffers of memory.

Run in a fresh interpreter so that its peak resident memory (``ru_maxrss``) is this frame's
alone: the image is made row block by row block (float32, no float64 temporaries), the peak
is read before and after ``detect``.
"""

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json, resource
    import numpy as np
    from aposos.detect import detect
    from aposos.simulate import render
    n = 10_000
    rng = np.random.default_rng(0)
    img = np.empty((n, n), np.float32)
    for y0 in range(0, n, 500):
        img[y0:y0 + 500] = rng.normal(100.0, 5.0, (500, n)).astype(np.float32)
    x, y = rng.uniform(20, n - 20, (2, 300))
    render.add_points(img, x, y, np.full(300, 5e3), 2.5)
    render.add_streaks(img, [100.0], [200.0], [400.0], [260.0], [4e4], 2.5)
    detect(img[:256, :256])  # imports and numba cache before the baseline
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    s = detect(img)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    pts = s[s["kind"] == "point"]
    d = np.hypot(np.asarray(pts["x"])[:, None] - x[None, :], np.asarray(pts["y"])[:, None] - y[None, :])
    print(json.dumps({"frames_extra": (after - before) / img.nbytes, "stars_found": int((d.min(axis=0) < 1).sum()),
                      "streaks": int((s["kind"] == "streak").sum()), "n": len(s)}))
""")


def test_ten_k_frame_in_a_few_frame_buffers():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(r)
    assert r["stars_found"] == 300 and r["streaks"] == 1
    assert r["n"] <= 300 + 1 + 2 * 100  # <= 2 false detections per Mpx of noise (100 Mpx)
    assert r["frames_extra"] <= 4.0, r  # a few float32 frame-sized buffers beyond the image
