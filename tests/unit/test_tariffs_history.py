"""`smartmeter tariffs compare --meters IDS` reads half-hours from the history store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smartmeter_lib.adapters.embedded_history import EmbeddedHistory
from smartmeter_lib.cli import main
from smartmeter_lib.model import Rollup

DAY0 = int(pd.Timestamp("2025-03-03", tz="UTC").value // 1_000_000)  # a Monday


def test_compare_from_history_matches_hand_computed_flat_cost(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    h = EmbeddedHistory(tmp_path / "history")
    starts = DAY0 + np.arange(48 * 2) * 1_800_000  # two whole days of 0.25 kWh half-hours
    h.write_rollups(Rollup(1800, np.array(["H1"] * len(starts), object), starts,
                           np.full(len(starts), 0.25), np.full(len(starts), 1, np.int32)))
    h.close()
    out = tmp_path / "costs.csv"
    assert main(["--data-dir", str(tmp_path), "tariffs", "compare", "--meters", "H1",
                 "--tariff", "flat_cap_2025q3", "--from", "2025-03-03", "--to", "2025-03-04",
                 "--output", str(out)]) == 0
    row = pd.read_csv(out).iloc[0]
    assert row["kwh"] == pytest.approx(24.0)
    # 24 kWh at 25.73 p + 2 days at 51.37 p (DESIGN §6, Jul-Sep 2025 cap)
    assert row["total_gbp"] == pytest.approx((24 * 25.73 + 2 * 51.37) / 100)
    assert main(["--data-dir", str(tmp_path), "tariffs", "compare", "--meters", "NOPE"]) == 2
    assert "no half-hourly history for meters NOPE" in capsys.readouterr().err
