"""smartmeter_lib: real-time analytics of household smart-meter electricity data.

The public API is small; everything else is reachable through its module.

>>> from smartmeter_lib import Fleet, build_settings
>>> settings = build_settings(homes=100)
>>> Fleet(settings.homes).n
100
"""

from smartmeter_lib.adapters import open_bus, open_history, open_live
from smartmeter_lib.config import Settings, build_settings
from smartmeter_lib.errors import SmartmeterError
from smartmeter_lib.model import Alert, AreaStats, MeterInfo, ReadingBatch, Rollup
from smartmeter_lib.simulate.fleet import Fleet
from smartmeter_lib.stream.runner import Processor

__all__ = [
    "Alert", "AreaStats", "Fleet", "MeterInfo", "Processor", "ReadingBatch", "Rollup",
    "Settings", "SmartmeterError", "build_settings", "open_bus", "open_history", "open_live",
]
