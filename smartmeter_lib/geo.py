"""Geohash helpers, London's bounds and cell polygons for maps.

Cell sizes: precision 5 is about 4.9 km × 4.9 km (about 200 cells cover London, the map),
precision 6 about 1.2 km × 0.6 km (neighbourhoods, outage localisation) and precision 7 about
153 m × 153 m (a street). A home's precision-7 geohash is stored; its areas are prefixes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import geohash2
import numpy as np
import numpy.typing as npt

#: Greater London, roughly (lat 51.28-51.70, lon -0.51-0.33)
LONDON_BOUNDS = (51.28, -0.51, 51.70, 0.33)  # south, west, north, east
LONDON_CENTRE = (51.5074, -0.1278)  # Charing Cross
HOME_PRECISION = 7
AREA_PRECISIONS = (5, 6)
_R = 6_378_137.0  # Web Mercator sphere radius, metres


def encode(lat: float, lon: float, precision: int = HOME_PRECISION) -> str:
    """The geohash of a point."""
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError(f"latitude/longitude out of range: {lat}, {lon}")
    return str(geohash2.encode(float(lat), float(lon), precision=precision))


def encode_many(lat: Sequence[float] | npt.NDArray[np.float64],
                lon: Sequence[float] | npt.NDArray[np.float64],
                precision: int = HOME_PRECISION) -> npt.NDArray[np.object_]:
    """Geohashes of many points (an object array of str)."""
    return np.array([encode(a, o, precision) for a, o in zip(lat, lon, strict=True)],
                    dtype=object)


def truncate(cells: Iterable[str], precision: int) -> npt.NDArray[np.object_]:
    """The enclosing cells at a coarser ``precision``."""
    return np.array([c[:precision] for c in cells], dtype=object)


@dataclass(frozen=True)
class Cell:
    geohash: str
    south: float
    west: float
    north: float
    east: float

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.south + self.north) / 2, (self.west + self.east) / 2)

    def polygon(self) -> tuple[list[float], list[float]]:
        """Corner latitudes and longitudes (closed ring not repeated)."""
        return ([self.south, self.south, self.north, self.north],
                [self.west, self.east, self.east, self.west])


def cell(geohash: str) -> Cell:
    """The bounding box of a geohash cell."""
    lat, lon, dlat, dlon = geohash2.decode_exactly(geohash)
    return Cell(geohash, lat - dlat, lon - dlon, lat + dlat, lon + dlon)


def cells_covering(bounds: tuple[float, float, float, float] = LONDON_BOUNDS,
                   precision: int = 5) -> list[str]:
    """Every cell at ``precision`` that intersects ``bounds`` (south, west, north, east)."""
    s, w, n, e = bounds
    c0 = cell(encode(s, w, precision))
    dlat, dlon = c0.north - c0.south, c0.east - c0.west
    out: set[str] = set()
    lat = c0.south + dlat / 2
    while lat - dlat / 2 < n:
        lon = c0.west + dlon / 2
        while lon - dlon / 2 < e:
            out.add(encode(lat, lon, precision))
            lon += dlon
        lat += dlat
    return sorted(out)


def to_mercator(lat: npt.ArrayLike, lon: npt.ArrayLike) -> tuple[
        npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Web Mercator x, y in metres (what tile maps use)."""
    la = np.radians(np.asarray(lat, dtype=np.float64))
    lo = np.radians(np.asarray(lon, dtype=np.float64))
    return _R * lo, _R * np.log(np.tan(np.pi / 4 + la / 2))


def cell_polygons_mercator(cells: Sequence[str]) -> tuple[list[list[float]], list[list[float]]]:
    """Patch coordinates (xs, ys) of cells in Web Mercator, for Bokeh ``patches``."""
    xs: list[list[float]] = []
    ys: list[list[float]] = []
    for g in cells:
        lats, lons = cell(g).polygon()
        x, y = to_mercator(lats, lons)
        xs.append(x.tolist())
        ys.append(y.tolist())
    return xs, ys


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(a))
