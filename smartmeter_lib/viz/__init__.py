"""Bokeh figure builders and live-store access for the dashboards and notebooks."""
