"""The stores a dashboard kernel reads: the live store of the settings (required) and the
history store (optional: a dashboard still runs, with ``n/a`` where history is needed, when
Cassandra does not answer)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from smartmeter_lib.adapters.base import HistoryStore, LiveStore
from smartmeter_lib.config import Settings, build_settings
from smartmeter_lib.errors import SmartmeterError
from smartmeter_lib.model import MeterInfo

log = logging.getLogger(__name__)


@dataclass
class DashboardStores:
    settings: Settings
    live: LiveStore
    history: HistoryStore | None

    def meters(self) -> MeterInfo | None:
        """The meter registry from history (None when history is unavailable or empty)."""
        if self.history is None:
            return None
        try:
            m = self.history.meters()
        except Exception:  # a dashboard without the registry still shows the live store
            log.warning("the meter registry could not be read", exc_info=True)
            return None
        return m if len(m) else None


def open_dashboard_stores(settings: Settings | None = None) -> DashboardStores:
    """Open the live store (a failure raises, with how to fix it) and, if it answers, the
    history store."""
    from smartmeter_lib.adapters import open_history, open_live

    settings = settings or build_settings()
    live = open_live(settings)
    history: HistoryStore | None
    try:
        history = open_history(settings)
    except SmartmeterError as err:
        log.warning("history store unavailable (%s); the dashboard shows n/a where it needs "
                    "history", err)
        history = None
    return DashboardStores(settings, live, history)
