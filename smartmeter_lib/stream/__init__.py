"""Stream processing: event-time windows (pure) and the processor that runs them on a bus."""

from smartmeter_lib.stream.runner import Processor, ProcessorStats
from smartmeter_lib.stream.windows import LiveSecond, StepResult, WindowedAggregator

__all__ = ["LiveSecond", "Processor", "ProcessorStats", "StepResult", "WindowedAggregator"]
