"""Kept work arrays: reused within a thread, never shared between threads, results unchanged."""

import threading

import numpy as np

from aposos.detect import detect
from aposos.detect.workspace import KEEP_MAX_BYTES, kept, release

from test_detect_scenes import point_scene


def test_kept_arrays_are_reused_per_thread_and_not_above_the_limit():
    a = kept("test", (100, 50))
    b = kept("test", (20, 10))  # smaller: a view of the same memory
    assert np.shares_memory(a, b) and b.shape == (20, 10)
    assert not np.shares_memory(kept("test", (200, 100)), a)  # larger: a new array
    other = []
    t = threading.Thread(target=lambda: other.append(kept("test", (100, 50))))
    t.start()
    t.join()
    assert not np.shares_memory(other[0], kept("test", (100, 50)))
    big = (KEEP_MAX_BYTES // 4 + 1,)
    assert not np.shares_memory(kept("big", big), kept("big", big))
    a = kept("test", (100, 50))
    release()
    assert not np.shares_memory(kept("test", (100, 50)), a)


def test_detect_repeats_exactly_with_kept_arrays_and_other_frames_between():
    adu, _ = point_scene((300, 400), n=40, seed=11)
    other, _ = point_scene((256, 256), n=80, seed=12)
    first = detect(adu, fwhm_px=2.5)
    detect(other, fwhm_px=2.5)
    again = detect(adu, fwhm_px=2.5)
    threads = []
    t = threading.Thread(target=lambda: threads.append(detect(adu, fwhm_px=2.5)))
    t.start()
    detect(other, fwhm_px=2.5)
    t.join()
    for tab in (again, threads[0]):
        assert len(tab) == len(first) > 30
        for name in ("x", "y", "flux", "snr"):
            assert np.array_equal(np.asarray(tab[name]), np.asarray(first[name]))
