from __future__ import annotations

import numpy as np
import pytest

from smartmeter_lib import geo


def test_cell_contains_its_point_and_has_the_documented_size() -> None:
    lat, lon = 51.5074, -0.1278
    for p, (h_km, w_km) in {5: (4.9, 3.0), 6: (0.61, 0.76), 7: (0.153, 0.095)}.items():
        c = geo.cell(geo.encode(lat, lon, p))
        assert c.south <= lat <= c.north and c.west <= lon <= c.east
        height = geo.haversine_km(c.south, c.west, c.north, c.west)
        width = geo.haversine_km(c.south, c.west, c.south, c.east)
        assert height == pytest.approx(h_km, rel=0.05)
        assert width == pytest.approx(w_km, rel=0.05)


def test_prefixes_are_the_enclosing_areas() -> None:
    g7 = geo.encode(51.47, -0.06, 7)
    assert geo.encode(51.47, -0.06, 5) == g7[:5]
    assert geo.truncate([g7, g7], 6).tolist() == [g7[:6], g7[:6]]


def test_cells_covering_london_cover_every_point() -> None:
    cells = set(geo.cells_covering(precision=5))
    assert 150 <= len(cells) <= 260  # "about 200 cells cover London"
    rng = np.random.default_rng(0)
    s, w, n, e = geo.LONDON_BOUNDS
    for lat, lon in zip(rng.uniform(s, n, 500), rng.uniform(w, e, 500), strict=True):
        assert geo.encode(lat, lon, 5) in cells


def test_mercator_reference_points() -> None:
    x, y = geo.to_mercator([0.0, 0.0], [0.0, 180.0])
    assert x.tolist() == pytest.approx([0.0, 20_037_508.34], abs=0.01)
    assert y.tolist() == pytest.approx([0.0, 0.0], abs=1e-6)
    xs, ys = geo.cell_polygons_mercator(["gcpvj"])
    assert len(xs[0]) == 4 and len(ys[0]) == 4


def test_bad_coordinates_are_refused() -> None:
    with pytest.raises(ValueError, match="out of range"):
        geo.encode(95.0, 0.0)
