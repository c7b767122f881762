"""YAML with line numbers, so that errors in tariff files name the file and the line."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from smartmeter_lib.errors import DataError


class LinedMap(dict[str, Any]):
    """A YAML mapping that knows its line and the line of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


class _Loader(yaml.SafeLoader):
    pass


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> LinedMap:
    out = LinedMap({str(k): v for k, v in loader.construct_mapping(node, deep=True).items()})
    out.line = node.start_mark.line + 1
    out.key_lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value}
    return out


def _construct_timestamp(loader: _Loader, node: yaml.ScalarNode) -> Any:
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError:  # e.g. 2025-13-01: keep the text so the error can name the line
        return str(node.value)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


class Ctx:
    """Where a tariff is being read: builds DataErrors that name the file and line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, where: LinedMap | None, key: str | None, msg: str) -> DataError:
        line = 1
        if where is not None:
            line = where.key_lines.get(key, where.line) if key else where.line
        return DataError(f"{self.path}:{line}: {msg}")

    def number(self, where: LinedMap, key: str, *, required: bool = True,
               default: float = 0.0) -> float:
        if key not in where:
            if required:
                raise self.error(where, None, f"missing {key!r}")
            return default
        v = where[key]
        if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v):
            raise self.error(where, key, f"{key} must be a number, got {v!r}")
        return float(v)

    def date(self, where: LinedMap, key: str) -> date | None:
        v = where.get(key)
        if isinstance(v, datetime):
            return v.date()
        if v is None or isinstance(v, date):
            return v
        try:
            return date.fromisoformat(str(v))
        except ValueError:
            raise self.error(where, key, f"{key} must be a date YYYY-MM-DD, got {v!r}") from None

    def keys(self, where: Any, allowed: set[str], what: str) -> LinedMap:
        if not isinstance(where, LinedMap):
            raise self.error(None, None, f"{what} must be a mapping, got {where!r}")
        extra = sorted(set(where) - allowed)
        if extra:
            raise self.error(where, extra[0], f"unknown key {extra[0]!r} in {what} "
                             f"(allowed: {', '.join(sorted(allowed))})")
        return where


def load_yaml(path: Path) -> Any:
    """Parse a YAML file; mappings become :class:`LinedMap` (DataError if unreadable)."""
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # a SafeLoader
    except OSError as err:
        raise DataError(f"{path}: cannot read tariff: {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise DataError(f"{path}:{line}: not valid YAML: {err}") from None
