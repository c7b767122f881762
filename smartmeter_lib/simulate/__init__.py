"""Simulated meter fleets and the producers that stream them."""

from smartmeter_lib.simulate.fleet import Fleet

__all__ = ["Fleet"]
