"""Tariff analytics and energy-saving insights.

- :mod:`~smartmeter_lib.insights.tariffs`: the tariff YAML spec, loading, the catalogue.
- :mod:`~smartmeter_lib.insights.cost`: exact cost of each meter under each tariff.
- :mod:`~smartmeter_lib.insights.recommend`: the cheapest tariff from any history.
- :mod:`~smartmeter_lib.insights.energy`: baseload, peak share, neighbours, trend, unusual days.
- :mod:`~smartmeter_lib.insights.commands`: the ``smartmeter tariffs`` CLI group.

The format and the semantics (coverage, time zones, projection) are in docs/tariffs.md.
"""

from smartmeter_lib.insights.cost import cost_table
from smartmeter_lib.insights.recommend import Recommendation, recommend
from smartmeter_lib.insights.tariffs import Tariff, load_catalogue, load_tariff

__all__ = ["Recommendation", "Tariff", "cost_table", "load_catalogue", "load_tariff",
           "recommend"]
