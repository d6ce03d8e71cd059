"""Per-object measurements on the pixels of each connected component, and windowed centroids.

Component statistics (:func:`component_stats`) are isophotal: sums over the pixels of the
component (the runs above the analysis threshold) of the background-subtracted image ``d``:

* first and second moments weighted by ``max(d, 0)`` -> isophotal centroid, ``a``, ``b``,
  ``theta`` (SExtractor definitions: ``a``, ``b`` the rms along the major/minor axis in pixels,
  ``theta`` the major-axis angle counter-clockwise from +x, degrees in (-90, 90]);
* the same moments weighted by the significance ``S`` (smooth, always positive) used to tell
  streaks from points;
* isophotal flux ``sum d`` and its variance ``sum rms^2 + sum max(d, 0) / gain``;
* peak of ``d``, maximum of ``S`` and its pixel, raw maximum (for saturation), area, bounding box,
  number of non-finite pixels and whether the component touches the frame edge.

Point sources are then measured with a Gaussian-windowed centroid (:func:`windowed_centroids`,
the SExtractor ``XWIN`` estimator, iterated to convergence). With the window equal to the PSF
this estimator reaches the Cramer-Rao bound for a Gaussian PSF on a background-limited frame;
its error is propagated from the pixel noise. The flux is the PSF-weighted (optimal) estimate.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .background import interp_at, interp_columns

# Columns of the component statistics array (float64 [n, NSTAT]).
STAT_NAMES = ("npix", "flux", "var", "sw", "sx", "sy", "sxx", "syy", "sxy",
              "ssw", "ssx", "ssy", "ssxx", "ssyy", "ssxy", "peak", "smax", "xs", "ys",
              "rawmax", "nsat", "nbad", "edge", "xmin", "xmax", "ymin", "ymax", "xpk", "ypk",
              "npeaks")
COL = {name: i for i, name in enumerate(STAT_NAMES)}
NSTAT = len(STAT_NAMES)


@njit(cache=True)
def _is_local_max(sig, y, x, s):
    ny, nx = sig.shape
    for yy in range(max(0, y - 1), min(ny, y + 2)):
        for xx in range(max(0, x - 1), min(nx, x + 2)):
            if (yy != y or xx != x) and sig[yy, xx] > s:
                return False
    return True


@njit(cache=True)
def _count_major_peaks(sig, ry, rx0, rx1, order, q0, q1, level):
    n = 0
    for q in range(q0, q1):
        r = order[q]
        for x in range(rx0[r], rx1[r] + 1):
            s = sig[ry[r], x]
            if s >= level and _is_local_max(sig, ry[r], x, s):
                n += 1
    return n


@njit(cache=True)
def component_stats(image, sig, bgrid, rgrid, ky, wy, kx, wx, ry, rx0, rx1, order, offsets,
                    saturation, inv_gain, peak_thresh, peak_frac):
    """Kernel: statistics (see ``STAT_NAMES``) of each component from its runs.

    ``order[offsets[c]:offsets[c + 1]]`` are the run indices of component ``c``. Moments are
    accumulated relative to the component's first pixel for numerical stability and shifted
    back at the end.
    """
    ny, nx = image.shape
    n = offsets.shape[0] - 1
    out = np.zeros((n, NSTAT))
    bcols, rcols = interp_columns(bgrid, kx, wx), interp_columns(rgrid, kx, wx)
    for c in range(n):
        st = out[c]
        first = order[offsets[c]]
        x_ref, y_ref = rx0[first], ry[first]
        st[COL_PEAK] = -np.inf
        st[COL_SMAX] = -np.inf
        st[COL_RAWMAX] = -np.inf
        st[COL_XMIN] = nx
        st[COL_YMIN] = ny
        st[COL_XMAX] = -1
        st[COL_YMAX] = -1
        for q in range(offsets[c], offsets[c + 1]):
            r = order[q]
            y = ry[r]
            st[COL_YMIN] = min(st[COL_YMIN], y)
            st[COL_YMAX] = max(st[COL_YMAX], y)
            st[COL_XMIN] = min(st[COL_XMIN], rx0[r])
            st[COL_XMAX] = max(st[COL_XMAX], rx1[r])
            if y == 0 or y == ny - 1 or rx0[r] == 0 or rx1[r] == nx - 1:
                st[COL_EDGE] = 1
            dy = y - y_ref
            for x in range(rx0[r], rx1[r] + 1):
                dx = x - x_ref
                v = image[y, x]
                s = sig[y, x]
                st[COL_NPIX] += 1
                if s > st[COL_SMAX]:
                    st[COL_SMAX] = s
                    st[COL_XS] = x
                    st[COL_YS] = y
                st[COL_SSW] += s
                st[COL_SSX] += s * dx
                st[COL_SSY] += s * dy
                st[COL_SSXX] += s * dx * dx
                st[COL_SSYY] += s * dy * dy
                st[COL_SSXY] += s * dx * dy
                if s >= peak_thresh and _is_local_max(sig, y, x, s):
                    st[COL_NPEAKS] += 1
                if not math.isfinite(v):
                    st[COL_NBAD] += 1
                    continue
                if v >= saturation:
                    st[COL_NSAT] += 1
                st[COL_RAWMAX] = max(st[COL_RAWMAX], v)
                d = v - interp_at(bcols, ky, wy, y, x)
                rms = interp_at(rcols, ky, wy, y, x)
                st[COL_FLUX] += d
                if d > st[COL_PEAK]:
                    st[COL_PEAK] = d
                    st[COL_XPK] = x
                    st[COL_YPK] = y
                w = max(d, 0.0)
                st[COL_VAR] += rms * rms + w * inv_gain
                st[COL_SW] += w
                st[COL_SX] += w * dx
                st[COL_SY] += w * dy
                st[COL_SXX] += w * dx * dx
                st[COL_SYY] += w * dy * dy
                st[COL_SXY] += w * dx * dy
        if st[COL_NPEAKS] > 1:  # count only peaks that are a fair fraction of the brightest
            st[COL_NPEAKS] = _count_major_peaks(sig, ry, rx0, rx1, order, offsets[c],
                                                offsets[c + 1], max(peak_thresh,
                                                                    peak_frac * st[COL_SMAX]))
        # first moments relative to the reference pixel -> absolute positions
        for wcol, xcol, ycol in ((COL_SW, COL_SX, COL_SY), (COL_SSW, COL_SSX, COL_SSY)):
            if st[wcol] > 0:
                st[xcol] = st[xcol] / st[wcol] + x_ref
                st[ycol] = st[ycol] / st[wcol] + y_ref
            else:
                st[xcol] = 0.5 * (st[COL_XMIN] + st[COL_XMAX])
                st[ycol] = 0.5 * (st[COL_YMIN] + st[COL_YMAX])
        # second moments -> central, per unit weight
        for wcol, xcol, ycol, a, b, ab in ((COL_SW, COL_SX, COL_SY, COL_SXX, COL_SYY, COL_SXY),
                                           (COL_SSW, COL_SSX, COL_SSY, COL_SSXX, COL_SSYY, COL_SSXY)):
            if st[wcol] > 0:
                mx, my = st[xcol] - x_ref, st[ycol] - y_ref
                st[a] = st[a] / st[wcol] - mx * mx
                st[b] = st[b] / st[wcol] - my * my
                st[ab] = st[ab] / st[wcol] - mx * my
    return out


COL_NPIX, COL_FLUX, COL_VAR, COL_SW, COL_SX, COL_SY, COL_SXX, COL_SYY, COL_SXY = range(9)
(COL_SSW, COL_SSX, COL_SSY, COL_SSXX, COL_SSYY, COL_SSXY, COL_PEAK, COL_SMAX, COL_XS, COL_YS,
 COL_RAWMAX, COL_NSAT, COL_NBAD, COL_EDGE, COL_XMIN, COL_XMAX, COL_YMIN, COL_YMAX, COL_XPK, COL_YPK,
 COL_NPEAKS) = range(9, NSTAT)


def shape_from_moments(mxx, myy, mxy):
    """(a, b, theta_deg) from central second moments (px^2): rms along major/minor axes."""
    mxx, myy, mxy = (np.asarray(v, float) for v in (mxx, myy, mxy))
    half_sum = 0.5 * (mxx + myy)
    root = np.sqrt((0.5 * (mxx - myy)) ** 2 + mxy**2)
    a = np.sqrt(np.clip(half_sum + root, 0, None))
    b = np.sqrt(np.clip(half_sum - root, 0, None))
    theta = np.degrees(0.5 * np.arctan2(2 * mxy, mxx - myy))
    return a, b, theta


@njit(cache=True)
def _window_pass(image, bcols, ky, wy, xc, yc, sigma, half):
    ny, nx = image.shape
    x0, x1 = max(0, int(xc) - half), min(nx - 1, int(xc) + half + 1)
    y0, y1 = max(0, int(yc) - half), min(ny - 1, int(yc) + half + 1)
    sw = swx = swy = 0.0
    inv2s2 = 0.5 / (sigma * sigma)
    for y in range(y0, y1 + 1):
        for x in range(x0, x1 + 1):
            v = image[y, x]
            if not math.isfinite(v):
                continue
            r2 = (x - xc) ** 2 + (y - yc) ** 2
            if r2 > 16 * sigma * sigma:
                continue
            w = math.exp(-r2 * inv2s2) * (v - interp_at(bcols, ky, wy, y, x))
            sw += w
            swx += w * (x - xc)
            swy += w * (y - yc)
    return sw, swx, swy


@njit(cache=True)
def windowed_centroids(image, bgrid, rgrid, ky, wy, kx, wx, x_init, y_init, sigma, inv_gain,
                       max_iter, tol):
    """Kernel: Gaussian-windowed centroids (XWIN) with errors and PSF-weighted fluxes.

    ``sigma`` is the window (= PSF) standard deviation in px. The iteration ``xc += 2 * sum(w
    (x - xc) d) / sum(w d)`` converges to the window-weighted centroid (the factor 2 is the
    SExtractor acceleration). Returns (x, y, x_err, y_err, flux, flux_err, niter); the flux is
    ``sum(p d) / sum(p^2)`` with ``p`` the unit-flux Gaussian PSF at the centroid.
    """
    n = x_init.shape[0]
    ny, nx = image.shape
    xo = np.empty(n)
    yo = np.empty(n)
    xe = np.empty(n)
    ye = np.empty(n)
    fo = np.empty(n)
    fe = np.empty(n)
    it_out = np.zeros(n, np.int64)
    half = int(math.ceil(4 * sigma)) + 1
    s2 = sigma * sigma
    bcols, rcols = interp_columns(bgrid, kx, wx), interp_columns(rgrid, kx, wx)
    norm = 1.0 / (2 * math.pi * s2)
    for i in range(n):
        xc, yc = x_init[i], y_init[i]
        for it in range(max_iter):
            sw, swx, swy = _window_pass(image, bcols, ky, wy, xc, yc, sigma, half)
            if sw <= 0:
                break
            dx, dy = 2.0 * swx / sw, 2.0 * swy / sw
            if abs(dx) > half or abs(dy) > half:
                break  # diverging: keep the previous estimate
            xc += dx
            yc += dy
            it_out[i] = it + 1
            if dx * dx + dy * dy < tol * tol:
                break
        # errors (linearised estimator) and PSF-weighted flux at the final centroid
        x0, x1 = max(0, int(xc) - half), min(nx - 1, int(xc) + half + 1)
        y0, y1 = max(0, int(yc) - half), min(ny - 1, int(yc) + half + 1)
        num_x = num_y = den_x = den_y = sw = 0.0
        spd = spp = svp = 0.0
        for y in range(y0, y1 + 1):
            for x in range(x0, x1 + 1):
                v = image[y, x]
                if not math.isfinite(v):
                    continue
                ddx, ddy = x - xc, y - yc
                r2 = ddx * ddx + ddy * ddy
                if r2 > 16 * s2:
                    continue
                d = v - interp_at(bcols, ky, wy, y, x)
                rms = interp_at(rcols, ky, wy, y, x)
                var = rms * rms + max(d, 0.0) * inv_gain
                w = math.exp(-0.5 * r2 / s2)
                num_x += w * w * ddx * ddx * var
                num_y += w * w * ddy * ddy * var
                sw += w * d
                den_x += w * d * ddx * ddx
                den_y += w * d * ddy * ddy
                p = norm * w
                spd += p * d
                spp += p * p
                svp += p * p * var
        gx = sw - den_x / s2
        gy = sw - den_y / s2
        xo[i], yo[i] = xc, yc
        xe[i] = math.sqrt(num_x) / abs(gx) if gx != 0 else np.inf
        ye[i] = math.sqrt(num_y) / abs(gy) if gy != 0 else np.inf
        if spp > 0:
            fo[i] = spd / spp
            fe[i] = math.sqrt(svp) / spp
        else:
            fo[i] = 0.0
            fe[i] = np.inf
    return xo, yo, xe, ye, fo, fe, it_out


@njit(cache=True)
def sharpness(image, bgrid, ky, wy, kx, wx, xp, yp):
    """Kernel: ``(peak - mean of its 8 neighbours) / peak`` at integer pixels (background removed).

    Close to 1 for a single hot pixel or a cosmic-ray hit, bounded well below 1 for a PSF.
    """
    n = xp.shape[0]
    ny, nx = image.shape
    out = np.full(n, np.nan)
    bcols = interp_columns(bgrid, kx, wx)
    for i in range(n):
        x, y = xp[i], yp[i]
        if x < 1 or y < 1 or x > nx - 2 or y > ny - 2:
            continue
        c = image[y, x] - interp_at(bcols, ky, wy, y, x)
        s = 0.0
        for dy in range(-1, 2):
            for dx in range(-1, 2):
                if dx != 0 or dy != 0:
                    s += image[y + dy, x + dx] - interp_at(bcols, ky, wy, y + dy, x + dx)
        if c > 0 and math.isfinite(s):
            out[i] = (c - s / 8.0) / c
    return out


def group_runs(comp: np.ndarray, ncomp: int):
    """(order, offsets): run indices sorted by component, and each component's slice in them."""
    order = np.argsort(comp, kind="stable")
    counts = np.bincount(comp, minlength=ncomp)
    offsets = np.zeros(ncomp + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return order, offsets


@njit(cache=True)
def runs_of_labels(labels):
    """Kernel: runs of constant positive label -> (y, x0, x1, label - 1) in raster order."""
    ny, nx = labels.shape
    n = 0
    for y in range(ny):
        for x in range(nx):
            v = labels[y, x]
            if v > 0 and (x == 0 or labels[y, x - 1] != v):
                n += 1
    ry = np.empty(n, np.int32)
    rx0 = np.empty(n, np.int32)
    rx1 = np.empty(n, np.int32)
    comp = np.empty(n, np.int64)
    i = 0
    for y in range(ny):
        for x in range(nx):
            v = labels[y, x]
            if v > 0 and (x == 0 or labels[y, x - 1] != v):
                ry[i], rx0[i], comp[i] = y, x, v - 1
            if v > 0 and (x == nx - 1 or labels[y, x + 1] != v):
                rx1[i] = x
                i += 1
    return ry, rx0, rx1, comp


def measure(image, labels, bkg=None, *, fwhm_px: float = 2.5, gain_e_per_adu=None,
            saturation_adu=np.inf):
    """Measure every labelled object of ``image`` (labels: int [ny, nx], 0 = none, 1..n).

    Returns an astropy Table with one row per label 1..max: isophotal ``area`` (px),
    ``flux_iso`` and ``flux_iso_err`` (ADU), ``x_iso, y_iso`` (flux-weighted centroid, px),
    ``a, b`` (px), ``theta_deg``, ``peak`` (ADU), ``sig`` (peak of the matched-filter map) and the
    windowed centroid ``x, y, x_err, y_err`` (px) with the PSF-weighted ``flux, flux_err`` (ADU).
    ``bkg`` defaults to :func:`~aposos.detect.background.background` of the image.
    """
    from astropy.table import Table

    from ..errors import AposError
    from .background import background, padded_grid
    from .significance import FWHM_PER_SIGMA, significance

    image = np.ascontiguousarray(image, dtype=np.float32)
    labels = np.asarray(labels)
    if image.ndim != 2 or labels.shape != image.shape:
        raise AposError(f"image {image.shape} and labels {labels.shape} must be equal 2-D shapes")
    if labels.dtype.kind not in "iu":
        raise AposError(f"labels must be integers, got {labels.dtype}")
    bkg = background(image) if bkg is None else bkg
    sig, _, _ = significance(image, bkg, fwhm_px)
    ry, rx0, rx1, comp = runs_of_labels(np.ascontiguousarray(labels, dtype=np.int64))
    ncomp = int(labels.max()) if labels.size else 0
    order, offsets = group_runs(comp, ncomp)
    ky, wy, kx, wx = bkg.weights()
    bgrid, rgrid = padded_grid(bkg.back_grid), padded_grid(bkg.rms_grid)
    inv_gain = 0.0 if gain_e_per_adu is None else 1.0 / gain_e_per_adu
    st = component_stats(image, sig, bgrid, rgrid, ky, wy, kx, wx, ry, rx0, rx1, order, offsets,
                         float(saturation_adu), inv_gain, np.inf, 1.0)
    a, b, theta = shape_from_moments(st[:, COL_SXX], st[:, COL_SYY], st[:, COL_SXY])
    x, y, xe, ye, f, fe, _ = windowed_centroids(
        image, bgrid, rgrid, ky, wy, kx, wx, st[:, COL_SX].copy(), st[:, COL_SY].copy(),
        fwhm_px / FWHM_PER_SIGMA, inv_gain, 30, 1e-4)
    return Table({"label": np.arange(1, ncomp + 1), "area": st[:, COL_NPIX],
                  "flux_iso": st[:, COL_FLUX], "flux_iso_err": np.sqrt(st[:, COL_VAR]),
                  "x_iso": st[:, COL_SX], "y_iso": st[:, COL_SY], "a": a, "b": b,
                  "theta_deg": theta, "peak": st[:, COL_PEAK], "sig": st[:, COL_SMAX],
                  "x": x, "y": y, "x_err": xe, "y_err": ye, "flux": f, "flux_err": fe})


@njit(cache=True)
def component_peaks(sig, ry, rx0, rx1, order, offsets, comps, levels):
    """Kernel: local maxima of S (3 x 3) at or above ``levels[k]`` in each component ``comps[k]``.

    Returns (x, y, k) int64 arrays: the peaks of blended components, from which each blended
    star gets its own windowed centroid (a light deblending).
    """
    cap = 16
    xs = np.empty(cap, np.int64)
    ys = np.empty(cap, np.int64)
    ks = np.empty(cap, np.int64)
    n = 0
    for k in range(comps.shape[0]):
        c = comps[k]
        for q in range(offsets[c], offsets[c + 1]):
            r = order[q]
            y = ry[r]
            for x in range(rx0[r], rx1[r] + 1):
                s = sig[y, x]
                if s >= levels[k] and _is_local_max(sig, y, x, s):
                    if n == cap:
                        cap *= 2
                        xs2 = np.empty(cap, np.int64)
                        ys2 = np.empty(cap, np.int64)
                        ks2 = np.empty(cap, np.int64)
                        xs2[:n], ys2[:n], ks2[:n] = xs[:n], ys[:n], ks[:n]
                        xs, ys, ks = xs2, ys2, ks2
                    xs[n], ys[n], ks[n] = x, y, k
                    n += 1
    return xs[:n], ys[:n], ks[:n]
