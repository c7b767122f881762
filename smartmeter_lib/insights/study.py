"""Fleet-level tariff study: savings per tariff across meters, and its Bokeh figures.

Used by ``notebooks/03_tariff_study.ipynb`` so that its cells stay thin.

>>> annual = pd.DataFrame({"meter_id": ["a", "a", "b", "b"], "tariff": ["flat", "tou"] * 2,
...                        "annual_cost_gbp": [500.0, 450.0, 600.0, 640.0]})
>>> savings_vs_reference(annual, "flat")["saving_gbp"].tolist()
[0.0, 50.0, 0.0, -40.0]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from bokeh.layouts import column
from bokeh.models import ColumnDataSource, HoverTool, LayoutDOM
from bokeh.plotting import figure

from smartmeter_lib.errors import ConfigError


def savings_vs_reference(annual: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Per meter and tariff: the annual saving against ``reference`` (positive = cheaper)."""
    if reference not in set(annual["tariff"]):
        raise ConfigError(f"reference tariff {reference!r} is not in the table")
    ref = annual.loc[annual["tariff"] == reference].set_index("meter_id")["annual_cost_gbp"]
    out = annual[["meter_id", "tariff", "annual_cost_gbp"]].copy()
    out["saving_gbp"] = out["meter_id"].map(ref) - out["annual_cost_gbp"]
    return out.reset_index(drop=True)


def savings_summary(savings: pd.DataFrame) -> pd.DataFrame:
    """Per tariff: meters, share that would save, mean and 10/50/90% savings (£ a year)."""
    g = savings.dropna(subset=["saving_gbp"]).groupby("tariff")["saving_gbp"]
    out = pd.DataFrame({
        "meters": g.size(),
        "share_saving": g.apply(lambda s: float((s > 0).mean())),
        "mean_gbp": g.mean(),
        "p10_gbp": g.quantile(0.1),
        "median_gbp": g.median(),
        "p90_gbp": g.quantile(0.9),
    })
    return out.sort_values("median_gbp", ascending=False)


def savings_figure(savings: pd.DataFrame, *, width: int = 760) -> LayoutDOM:
    """Distribution of the annual saving per tariff: 10-90% bar, 25-75% box, median, mean."""
    summary = savings_summary(savings)
    q = savings.dropna(subset=["saving_gbp"]).groupby("tariff")["saving_gbp"]
    tariffs = list(summary.index)
    src = ColumnDataSource({
        "tariff": tariffs,
        "p10": summary["p10_gbp"].to_numpy(), "p90": summary["p90_gbp"].to_numpy(),
        "p25": q.quantile(0.25).reindex(tariffs).to_numpy(),
        "p75": q.quantile(0.75).reindex(tariffs).to_numpy(),
        "median": summary["median_gbp"].to_numpy(), "mean": summary["mean_gbp"].to_numpy(),
        "share": (100 * summary["share_saving"]).round(0).to_numpy(),
    })
    fig = figure(y_range=tariffs[::-1], width=width, height=60 + 45 * len(tariffs),
                 title="Annual saving against the reference tariff, across meters (£)",
                 x_axis_label="£ a year (positive: cheaper than the reference)",
                 name="savings_by_tariff", toolbar_location=None)
    fig.hbar(y="tariff", left="p10", right="p90", height=0.15, source=src, color="#9ecae1")
    fig.hbar(y="tariff", left="p25", right="p75", height=0.5, source=src, color="#3182bd")
    fig.scatter(x="median", y="tariff", size=9, source=src, color="black")
    fig.scatter(x="mean", y="tariff", size=9, marker="diamond", source=src, color="#e6550d")
    fig.add_tools(HoverTool(tooltips=[("tariff", "@tariff"), ("median", "£@median{0}"),
                                      ("10-90%", "£@p10{0} to £@p90{0}"),
                                      ("meters saving", "@share%")]))
    fig.ray(x=[0], y=[0], length=0, angle=np.pi / 2, color="grey")
    return column(fig, recommendation_figure(savings, width=width))


def recommendation_figure(savings: pd.DataFrame, *, width: int = 760) -> LayoutDOM:
    """How many meters each tariff is the cheapest for."""
    best = savings.dropna(subset=["annual_cost_gbp"])
    best = best.loc[best.groupby("meter_id")["annual_cost_gbp"].idxmin(), "tariff"]
    counts = best.value_counts()
    src = ColumnDataSource({"tariff": list(counts.index), "meters": counts.to_numpy()})
    fig = figure(x_range=list(counts.index), width=width, height=300,
                 title="Meters for which each tariff is the cheapest", name="cheapest_counts",
                 toolbar_location=None)
    fig.vbar(x="tariff", top="meters", width=0.7, source=src, color="#31a354")
    fig.xaxis.major_label_orientation = 0.5
    return fig
