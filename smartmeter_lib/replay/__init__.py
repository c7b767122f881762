"""Replay of real meter files: readers for the LCL formats and a generic CSV, and a
time-compressed replay into the configured bus (docs/replay.md)."""

from smartmeter_lib.replay.readers import BadRow, MeterFile, read_meter_file

__all__ = ["BadRow", "MeterFile", "read_meter_file"]
