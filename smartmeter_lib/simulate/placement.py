"""Where the homes are: Greater London with a realistic density, and geohash feeder areas.

Homes are drawn from a population density (on a 300 × 300 grid) over a coarse outline of Greater
London (about 25 vertices, within lat 51.28-51.70 and lon -0.51-0.33). The density is highest in
inner London and falls off with distance from Charing Cross (e-folding 5 km, over a floor), with
bumps for the outer town centres (Croydon, Kingston, Harrow, Ilford, Romford, Ealing, Bromley,
Enfield, ...). About 12% of homes are within 5 km of the centre, and the 7 km around it are
about 2.3 times as dense as the rest, close to the census picture of inner and outer London.

Each home gets a precision-7 geohash (its street) and a precision-6 "feeder area" (about
1.2 km × 0.6 km), the unit of simulated area outages. :func:`encode_geohash` is a vectorised
encoder, identical to :func:`smartmeter_lib.geo.encode`.

:func:`pseudo_location` places meters whose real location is unknown (replayed LCL files): the
SHA-256 of the meter id picks a point uniformly in a 10 km disc around Charing Cross, so the
same id always lands on the same spot.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from smartmeter_lib import geo

FloatArray = npt.NDArray[np.float64]
_BASE32 = np.array(list("0123456789bcdefghjkmnpqrstuvwxyz"))

#: a coarse outline of Greater London (lat, lon), clockwise from the west
LONDON_OUTLINE = np.array([
    (51.50, -0.50), (51.57, -0.50), (51.63, -0.49), (51.64, -0.40), (51.66, -0.30),
    (51.68, -0.20), (51.69, -0.10), (51.69, -0.01), (51.65, 0.05), (51.63, 0.15),
    (51.63, 0.27), (51.58, 0.32), (51.51, 0.31), (51.48, 0.22), (51.43, 0.17),
    (51.39, 0.15), (51.32, 0.10), (51.29, 0.02), (51.30, -0.08), (51.32, -0.16),
    (51.35, -0.26), (51.38, -0.33), (51.42, -0.40), (51.45, -0.47),
])

#: outer town centres (lat, lon, relative weight)
TOWN_CENTRES = np.array([
    (51.372, -0.099, 0.55),  # Croydon
    (51.410, -0.300, 0.35),  # Kingston
    (51.580, -0.336, 0.40),  # Harrow
    (51.559, 0.071, 0.45),   # Ilford
    (51.575, 0.183, 0.35),   # Romford
    (51.513, -0.305, 0.45),  # Ealing
    (51.406, 0.015, 0.35),   # Bromley
    (51.652, -0.081, 0.35),  # Enfield
    (51.468, -0.361, 0.40),  # Hounslow
    (51.546, -0.478, 0.25),  # Uxbridge
    (51.456, 0.146, 0.30),   # Bexleyheath
    (51.361, -0.193, 0.30),  # Sutton
    (51.553, -0.297, 0.40),  # Wembley
    (51.541, -0.003, 0.50),  # Stratford
    (51.600, -0.110, 0.35),  # Wood Green
])
KM_PER_DEG_LAT = 111.2
_PEAK, _FLOOR = 1.2, 0.18
KM_PER_DEG_LON = 111.32 * np.cos(np.radians(51.5))


def _km(lat: FloatArray, lon: FloatArray, lat0: float, lon0: float) -> FloatArray:
    return np.asarray(np.hypot((lat - lat0) * KM_PER_DEG_LAT, (lon - lon0) * KM_PER_DEG_LON))


def density(lat: npt.ArrayLike, lon: npt.ArrayLike) -> FloatArray:
    """Relative density of homes (1 at Charing Cross); 0 outside Greater London."""
    la = np.asarray(lat, dtype=np.float64)
    lo = np.asarray(lon, dtype=np.float64)
    clat, clon = geo.LONDON_CENTRE
    d = _km(la, lo, clat, clon)
    rho = _PEAK * np.exp(-d / 5.0) + _FLOOR
    for tlat, tlon, w in TOWN_CENTRES:
        rho += 0.35 * w * np.exp(-0.5 * (_km(la, lo, tlat, tlon) / 1.8) ** 2)
    return np.asarray(np.where(in_london(la, lo), rho, 0.0))


def in_london(lat: npt.ArrayLike, lon: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Whether points are inside the Greater London outline (ray casting, vectorised)."""
    y = np.asarray(lat, dtype=np.float64)
    x = np.asarray(lon, dtype=np.float64)
    inside = np.zeros(np.broadcast(y, x).shape, dtype=bool)
    py, px = LONDON_OUTLINE[:, 0], LONDON_OUTLINE[:, 1]
    j = len(py) - 1
    for i in range(len(py)):
        crosses = (py[i] > y) != (py[j] > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xint = (px[j] - px[i]) * (y - py[i]) / (py[j] - py[i]) + px[i]
        inside ^= crosses & (x < xint)
        j = i
    return inside


_GRID = 300  # cells a side of the sampling grid (about 150 m × 100 m over all London)


@functools.lru_cache(maxsize=8)
def _density_grid(s: float, w: float, n: float, e: float) -> FloatArray:
    """:func:`density` at the centres of a grid of cells over (s, w, n, e), as cell weights."""
    dlat, dlon = (n - s) / _GRID, (e - w) / _GRID
    la, lo = np.meshgrid(s + dlat * (np.arange(_GRID) + 0.5), w + dlon * (np.arange(_GRID) + 0.5),
                         indexing="ij")
    return density(la.ravel(), lo.ravel())


def place_homes(n: int, rng: np.random.Generator,
                bounds: tuple[float, float, float, float] | None = None) -> tuple[
                    FloatArray, FloatArray]:
    """Lat/lon of ``n`` homes drawn from :func:`density`, optionally within ``bounds``
    (south, west, north, east): a grid cell is drawn by its density, then a point uniformly
    within it."""
    s, w, nth, e = geo.LONDON_BOUNDS
    if bounds is not None:
        bs, bw, bn, be = (float(x) for x in bounds)
        s, w, nth, e = max(s, bs), max(w, bw), min(nth, bn), min(e, be)
        if s >= nth or w >= e:
            raise ValueError(f"bounds {bounds} do not overlap Greater London")
    rho = _density_grid(s, w, nth, e)
    total = float(rho.sum())
    if total <= 0:
        raise ValueError(f"bounds {bounds} hold no part of Greater London")
    cells = rng.choice(len(rho), size=n, p=rho / total)
    i, j = np.divmod(cells, _GRID)
    lat = s + (nth - s) / _GRID * (i + rng.random(n))
    lon = w + (e - w) / _GRID * (j + rng.random(n))
    return lat, lon


def encode_geohash(lat: npt.ArrayLike, lon: npt.ArrayLike,
                   precision: int = geo.HOME_PRECISION) -> npt.NDArray[np.object_]:
    """Geohashes of many points at once (same result as :func:`smartmeter_lib.geo.encode`).

    >>> encode_geohash([51.5074], [-0.1278], 7).tolist() == [geo.encode(51.5074, -0.1278, 7)]
    True
    """
    la = np.asarray(lat, dtype=np.float64).ravel()
    lo = np.asarray(lon, dtype=np.float64).ravel()
    lat_lo, lat_hi = np.full(la.shape, -90.0), np.full(la.shape, 90.0)
    lon_lo, lon_hi = np.full(lo.shape, -180.0), np.full(lo.shape, 180.0)
    chars = np.empty((len(la), precision), dtype=np.int64)
    even = True
    for c in range(precision):
        code = np.zeros(len(la), dtype=np.int64)
        for _ in range(5):
            if even:
                mid = (lon_lo + lon_hi) / 2
                bit = lo > mid  # geohash2 puts values equal to the midpoint in the lower half
                lon_lo = np.where(bit, mid, lon_lo)
                lon_hi = np.where(bit, lon_hi, mid)
            else:
                mid = (lat_lo + lat_hi) / 2
                bit = la > mid
                lat_lo = np.where(bit, mid, lat_lo)
                lat_hi = np.where(bit, lat_hi, mid)
            code = (code << 1) | bit
            even = not even
        chars[:, c] = code
    letters = np.ascontiguousarray(_BASE32[chars])
    return np.asarray(letters.view(f"<U{precision}").reshape(-1).astype(object))


def pseudo_location(meter_ids: Iterable[str], radius_km: float = 10.0) -> tuple[
        FloatArray, FloatArray]:
    """A stable made-up location for each meter id: a point in a ``radius_km`` disc around
    Charing Cross, picked by the SHA-256 of the id (uniform over the disc's area)."""
    ids = list(meter_ids)
    u = np.empty((len(ids), 2))
    for i, m in enumerate(ids):
        h = hashlib.sha256(str(m).encode()).digest()
        u[i, 0] = int.from_bytes(h[:8], "big") / 2**64
        u[i, 1] = int.from_bytes(h[8:16], "big") / 2**64
    r = radius_km * np.sqrt(u[:, 0])
    theta = 2 * np.pi * u[:, 1]
    clat, clon = geo.LONDON_CENTRE
    return clat + r * np.sin(theta) / KM_PER_DEG_LAT, clon + r * np.cos(theta) / KM_PER_DEG_LON
