"""Examine: turn series into loadables (plugins), pick the default selection, and load them into volumes."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from . import multiframe, scalar, sequence
from .loadable import Loadable

PLUGINS = {scalar.NAME: scalar, multiframe.NAME: multiframe, sequence.NAME: sequence}
_SERIES_FIELDS = ("SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "Modality")


def series_instances(db, series_id: int) -> list[dict[str, Any]]:
    """The instance rows of a series with its series-level attributes merged in (what plugins examine)."""
    series = db.conn.execute(
        "SELECT SeriesInstanceUID, SeriesNumber, SeriesDescription, Modality FROM series WHERE id = ?", (series_id,)
    ).fetchone()
    rows = db.instances([series_id])
    extra = dict(zip(_SERIES_FIELDS, series)) if series else {}
    for row in rows:
        row.update(extra)
    return rows


def examine_series(db, series_ids: list[int], split_by_time: bool = False) -> list[Loadable]:
    """Every plugin's loadables for each series, with the default selection made."""
    loadables: list[Loadable] = []
    for sid in series_ids:
        instances = series_instances(db, sid)
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
