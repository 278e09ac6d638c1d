"""Examine: turn series into loadables (plugins), pick the default selection, and load them into volumes."""

from __future__ import annotations

from collections import defaultdict

from . import multiframe, scalar, sequence
from .loadable import Loadable

PLUGINS = {scalar.NAME: scalar, multiframe.NAME: multiframe, sequence.NAME: sequence}


def examine_series(db, series_ids: list[int], split_by_time: bool = False) -> list[Loadable]:
    """Every plugin's loadables for each series, with the default selection made."""
    loadables: list[Loadable] = []
    for sid in series_ids:
        instances = db.series_instances(sid)
        for plugin in PLUGINS.values():
            loadables += plugin.examine(instances, split_by_time=split_by_time)
    select(loadables)
    return loadables


def select(loadables: list[Loadable]) -> None:
    """Per series: the most confident loadables are selected (ties all), except one with the same files as a
    loadable already selected."""
    by_series: dict[str, list[Loadable]] = defaultdict(list)
    for item in loadables:
        item.selected = False
        by_series[item.series_uid].append(item)
    for items in by_series.values():
        best = max(i.confidence for i in items)
        chosen: list[frozenset[str]] = []
        for item in items:
            if item.confidence == best and item.files not in chosen:
                item.selected = True
                chosen.append(item.files)


def load(db, loadable: Loadable, progress=None, regularize: bool = False):
    """A Volume (or several) from a loadable, by the plugin that proposed it; ``regularize`` resamples an
    irregular acquisition onto a regular grid (off by default)."""
    return PLUGINS[loadable.plugin].load(db, loadable, progress, regularize=regularize)
