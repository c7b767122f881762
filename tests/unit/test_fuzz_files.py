"""Malformed replay files, tariff files and price files: clear errors naming the file and
the line, never a crash from deep inside a parser (property tests with hypothesis)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartmeter_lib.errors import DataError
from smartmeter_lib.insights.prices import read_price_file
from smartmeter_lib.insights.tariffs import catalogue_files, load_tariff
from smartmeter_lib.replay.readers import read_meter_file

HEADER = "meter_id,timestamp,kwh,interval_s\n"
FIELD_TEXT = st.text(st.characters(blacklist_characters=",\n\r\x00\"",
                                   blacklist_categories=("Cs", "Zl", "Zp")), max_size=12)
# each corruption is a line that cannot be a reading
CORRUPT = st.one_of(
    FIELD_TEXT.filter(lambda t: t.strip() != "").map(lambda t: "x" + t),   # one field
    st.tuples(FIELD_TEXT, FIELD_TEXT).map(lambda t: f"M1,{t[0]}"),        # two fields
    st.just("M1,2024-06-01 12:00:00,0.001,1,extra"),                       # five fields
    FIELD_TEXT.filter(lambda t: _not_number(t)).map(
        lambda t: f"M1,2024-06-01 13:00:00,{t}x,1"),                         # kWh not a number
    FIELD_TEXT.map(lambda t: f"M1,when{t},0.001,1"),                         # bad timestamp
    st.floats(0.03, 1e300).map(lambda k: f"M1,2024-06-01 14:00:00,{k!r},1"),  # > 100 kW
    st.just("M1,1970-01-01 00:00:00,0.001,1"),                             # out of range
    st.just(",2024-06-01 15:00:00,0.001,1"),                               # no meter id
)


def _not_number(t: str) -> bool:
    try:
        float(t + "x")
    except ValueError:
        return True
    return False


def _good(i: int) -> str:
    return f"M{i % 3},2024-06-01 12:{i // 60 % 60:02d}:{i % 60:02d},{0.0001 * (i % 7 - 2):.4f},1"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n_good=st.integers(1, 80), bad=st.lists(st.tuples(st.integers(0, 80), CORRUPT),
                                                max_size=12))
def test_every_bad_row_is_reported_with_its_file_and_line(n_good: int,
                                                        bad: list[tuple[int, str]]) -> None:
    lines = [_good(i) for i in range(n_good)]
    for pos, text in sorted(bad, key=lambda b: -b[0]):
        lines.insert(min(pos, len(lines)), text)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "meters.csv"
        path.write_text(HEADER + "\n".join(lines) + "\n")
        bad_lines = sorted(i + 2 for i, ln in enumerate(lines) if ln not in
                           {_good(j) for j in range(n_good)})
        m = read_meter_file(path)
    assert len(m.frame) == n_good
    assert sorted(b.line for b in m.bad_rows) == bad_lines
    for b in m.bad_rows:
        assert b.file == str(path) and b.reason
        assert str(b).startswith(f"{path}:{b.line}: ")


@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02binary", b"name,price\nx,1\n",
                                     HEADER.encode() + b"M1,never,lots,1\n"])
def test_files_that_are_not_meter_files_are_refused_naming_the_file(tmp_path: Path,
                                                                    content: bytes) -> None:
    path = tmp_path / "odd.csv"
    path.write_bytes(content)
    with pytest.raises(DataError) as err:
        read_meter_file(path)
    assert str(path) in str(err.value)


# -- tariff files --------------------------------------------------------------------------
ECONOMY7 = next(p for p in catalogue_files() if p.name == "economy7.yaml")
E7_LINES = ECONOMY7.read_text().splitlines()


def _line_of(prefix: str) -> int:
    return next(i + 1 for i, ln in enumerate(E7_LINES) if ln.lstrip().startswith(prefix))


@pytest.mark.parametrize(("key", "bad", "needle"), [
    ("standing_charge:", "standing_charge: lots", "must be a number"),
    ("timezone:", "timezone: Mars/Olympus", "time zone"),
    ("- p_per_kwh: 14.00", "  - p_per_kwh: cheap", "must be a number"),
    ("windows:", '    windows: ["25:00-07:00"]', ""),
    ("export_rate:", "export_rat: 0.0", "unknown key"),
    ("name:", "name: [unclosed", "not valid YAML"),
])
def test_a_bad_tariff_file_names_the_file_and_the_line(tmp_path: Path, key: str, bad: str,
                                                       needle: str) -> None:
    n = _line_of(key)
    lines = list(E7_LINES)
    lines[n - 1] = bad
    path = tmp_path / "mine.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as err:
        load_tariff(path)
    msg = str(err.value)
    m = re.match(rf"^{re.escape(str(path))}:(\d+): ", msg)
    assert m is not None, msg
    assert abs(int(m.group(1)) - n) <= 1, msg  # YAML may report the next line for syntax
    assert needle in msg


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line=st.integers(0, len(E7_LINES) - 1), text=st.text(max_size=30))
def test_any_corrupted_tariff_line_loads_or_fails_with_file_and_line(line: int,
                                                                     text: str) -> None:
    lines = list(E7_LINES)
    lines[line] = text
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzzed.yaml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
        try:
            load_tariff(path)
        except DataError as err:
            m = re.match(rf"^{re.escape(str(path))}(:(\d+))?: ", str(err))
            assert m is not None, str(err)
            if m.group(2):
                assert 1 <= int(m.group(2)) <= len(lines) + 1


def test_a_bad_price_file_names_the_file_and_the_line(tmp_path: Path) -> None:
    rows = [f"2025-01-01T{h:02d}:{m:02d}:00Z,{10 + h}" for h in range(4) for m in (0, 30)]
    for i, bad, needle in ((3, "2025-01-01T01:00:00Z,lots", "not a number"),
                           (5, "2025-01-01T02:10:00Z,12", "not the start of a half-hour"),
                           (6, rows[0], "appears twice")):
        body = list(rows)
        body[i] = bad
        path = tmp_path / f"prices{i}.csv"
        path.write_text("ts_utc,p_per_kwh\n" + "\n".join(body) + "\n")
        with pytest.raises(DataError, match=rf"^{re.escape(str(path))}:{i + 2}: .*{needle}"):
            read_price_file(path)
