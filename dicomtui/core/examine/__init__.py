"""Examine: turn series into loadables (plugins), pick the default selection, and load them into volumes.

The use case both faces call: ``examine_series`` (stored attributes only) → ``choose`` (the default selection,
or the one the user numbered) → ``load_loadables`` (progress, cancel, strict refusal of loadables with
warnings) → a ``LoadReport`` of ``list[Volume]`` per loadable; ``examine_and_load`` does the three at once.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .. import suv
from ..errors import LoadError
from . import frames_view, mosaic, multiframe, nonimage, references, rtdose, rtstruct, scalar, seg, sequence
from .plugin import CONF_NO_PIXELS, ExamineOptions, Loadable, LoadOptions, Plugin, Progress

if TYPE_CHECKING:
    from ..volume import Volume

__all__ = ["PLUGINS", "ExamineOptions", "LoadOptions", "LoadProgress", "LoadReport", "LoadResult", "Loadable",
           "ReferencedGrids", "choose", "examine_and_load", "examine_series", "load", "load_loadables",
           "nothing_selected", "referenced_by_line", "referenced_grid", "select"]

PLUGINS: dict[str, Plugin] = {scalar.NAME: scalar, multiframe.NAME: multiframe, sequence.NAME: sequence,
                              mosaic.NAME: mosaic, frames_view.NAME: frames_view, nonimage.NAME: nonimage,
                              seg.NAME: seg, rtstruct.NAME: rtstruct, rtdose.NAME: rtdose}


def _claims() -> dict[str, str]:
    """SOPClassUID → the plugin that alone reads instances of it that have pixels (a plugin's ``SOP_CLASSES``): a
    SEG's frames are labels, not a grey multi-frame image, so the image plugins never see them."""
    return {uid: name for name, plugin in PLUGINS.items() for uid in getattr(plugin, "SOP_CLASSES", ())}


def examine_series(db: Any, series_ids: list[int], split_by_time: bool = False, *,
                   options: ExamineOptions | None = None) -> list[Loadable]:
    """Every plugin's loadables for each series (database ids), with the default selection made (``select``).
    ``options`` wins over ``split_by_time`` when given."""
    options = options or ExamineOptions(split_by_time=split_by_time)
    loadables: list[Loadable] = []
    claims = _claims()
    for sid in series_ids:
        instances = db.series_instances(sid)
        for name, plugin in PLUGINS.items():
            rows = [r for r in instances if not r.get("has_pixels")
                    or claims.get(r.get("SOPClassUID") or "", name) == name]
            if rows:
                loadables += plugin.examine(rows, options)
    suv.note_loadables(db, loadables)  # PET: the SUV factors beside each loadable (one header read per series)
    select(loadables)
    return loadables


def select(loadables: list[Loadable]) -> None:
    """Per series: the most confident loadables are selected (ties all), except one with the same files as a
    loadable already selected; objects without pixels (CONF_NO_PIXELS) never are: a default always loads."""
    by_series: dict[str, list[Loadable]] = defaultdict(list)
    for item in loadables:
        item.selected = False
        if item.confidence > CONF_NO_PIXELS:
            by_series[item.series_uid].append(item)
    for items in by_series.values():
        best = max(i.confidence for i in items)
        chosen: list[frozenset[str]] = []
        for item in items:
            if item.confidence == best and item.files not in chosen:
                item.selected = True
                chosen.append(item.files)


def load(db: Any, loadable: Loadable, progress: Progress | None = None, regularize: bool = False, *,
         cancel: threading.Event | None = None, options: LoadOptions | None = None) -> list[Volume]:
    """Every Volume of a loadable (one for a stack, one per time point/echo/b-value for a sequence), by the
    plugin that proposed it. ``regularize`` (or ``options``, which wins) resamples an irregular acquisition onto
    a regular grid. ``progress(done, total)`` counts slices. Raises ``LoadError`` — also when ``cancel`` is set,
    which is checked between slices: a cancelled load returns nothing — or ``PixelError`` (a file)."""
    options = options or LoadOptions(regularize=regularize)
    if options.referenced_grid is None:
        options = replace(options, referenced_grid=referenced_grid(db, options))
    return PLUGINS[loadable.plugin].load(db, loadable, progress, cancel, options)


def referenced_grid(db: Any, options: LoadOptions | None = None) -> ReferencedGrids:
    """A ``LoadOptions.referenced_grid`` over ``db``: the first volume of the default selection of the series
    with that SeriesInstanceUID (examined and loaded with ``options``' regularize), cached by UID; None when the
    database does not hold the series or nothing of it loads as an image."""
    return ReferencedGrids(db, options.regularize if options is not None else False)


class ReferencedGrids:
    """``grids(series_uid) -> Volume | None`` (a ``LoadOptions.referenced_grid``) that also remembers which
    loadable gave each volume (``loaded``): a load of a SEG then returns the very image it was placed on."""

    def __init__(self, db: Any, regularize: bool = False) -> None:
        self.db = db
        self.regularize = regularize
        self.cache: dict[str, tuple[Loadable, Volume] | None] = {}

    def __call__(self, series_uid: str) -> Volume | None:
        found = self.loaded(series_uid)
        return found[1] if found is not None else None

    def loaded(self, series_uid: str) -> tuple[Loadable, Volume] | None:
        """The loadable and image volume of series ``series_uid`` (loaded once), or None."""
        if series_uid not in self.cache:
            row = self.db.find("series", series_uid)
            found = None
            if row is not None:
                for item in (item for item in examine_series(self.db, [row["id"]]) if item.selected):
                    inner = LoadOptions(regularize=self.regularize, referenced_grid=lambda _uid: None)
                    volumes = [v for v in load(self.db, item, options=inner) if not v.is_labels]
                    if volumes:
                        if not volumes[0].series_uid:
                            volumes[0].series_uid = series_uid
                        found = (item, volumes[0])
                        break
            self.cache[series_uid] = found
        return self.cache[series_uid]


def referenced_by_line(db: Any, series_uid: str) -> str:
    """"referenced by 2 segmentations, 1 structure set" for the objects in ``db`` that refer to series
    ``series_uid`` ("" when none): what examine of an image series shows (stored references, no file opened)."""
    return references.referenced_by_line(references.referenced_by(db, series_uid))


# ---- the use case: examine → choose → load -------------------------------------------------------------------

def choose(loadables: list[Loadable], number: int | None = None, *, first_only: bool = False) -> list[Loadable]:
    """What to load: loadable ``number`` (1-based, as examine lists them) or else the default selection (only its
    first with ``first_only``, for one output file). Raises ``LoadError`` when ``number`` is out of range."""
    if number is not None:
        if not 1 <= number <= len(loadables):
            raise LoadError(f"there is no loadable {number}: the series offers {len(loadables)} "
                            f"(1 to {len(loadables)})")
        return [loadables[number - 1]]
    chosen = [item for item in loadables if item.selected]
    return chosen[:1] if first_only else chosen


def nothing_selected(loadables: list[Loadable]) -> str:
    """Why the default selection of ``loadables`` is empty, in one sentence: what the objects without pixels are
    ("3: report (structured report): a structured report: no image to load"), else that there is nothing."""
    reasons = [f"{item.name}: {item.warnings[0]}" for item in loadables
               if item.confidence <= CONF_NO_PIXELS and item.warnings]
    return "; ".join(reasons) or "nothing loadable in the selection"


@dataclass(frozen=True)
class LoadProgress:
    """Where a load of several loadables is: loadable ``index`` (1-based) of ``count``, its ``done`` of ``total``
    slices."""

    index: int
    count: int
    name: str
    done: int
    total: int

    def text(self) -> str:
        return f"loading {self.index}/{self.count} {self.name}: {self.done}/{self.total}"


@dataclass
class LoadResult:
    """One loaded loadable and its volumes (in order; one for a stack)."""

    loadable: Loadable
    volumes: list[Volume]

    @property
    def one_by_one(self) -> bool:
        """Its volumes are images one by one (``frames_view``: sizes may differ), not one 3D or 4D image."""
        return self.loadable.plugin == frames_view.NAME

    @property
    def found_warnings(self) -> list[str]:
        """What loading found beyond the loadable's own warnings (examine said those): a file left out, what
        regularize did; each once, in the order of the volumes."""
        said = set(self.loadable.warnings)
        return list(dict.fromkeys(w for v in self.volumes for w in v.warnings if w not in said))


@dataclass
class LoadReport:
    """What a load did: the loadables chosen, those loaded with their volumes, and those refused (``strict`` and
    the loadable has warnings; not loaded)."""

    chosen: list[Loadable] = field(default_factory=list)
    loaded: list[LoadResult] = field(default_factory=list)
    refused: list[Loadable] = field(default_factory=list)
    reason: str = ""  # why nothing was chosen, when nothing was (``nothing_selected``)

    @property
    def volumes(self) -> list[Volume]:
        """Every volume loaded, loadable after loadable."""
        return [v for result in self.loaded for v in result.volumes]

    def summary(self) -> str:
        if not self.chosen:
            return self.reason or "nothing loadable in the selection"
        parts = []
        if self.loaded:
            names = ", ".join(r.loadable.name for r in self.loaded)
            parts.append(f"loaded {len(self.volumes)} volume{'s' if len(self.volumes) != 1 else ''} ({names})")
        if self.refused:
            names = ", ".join(item.name for item in self.refused)
            parts.append(f"not loaded (strict and the loadable has warnings): {names}")
        return "; ".join(parts)


def load_loadables(db: Any, loadables: list[Loadable], options: LoadOptions | None = None, *, strict: bool = False,
                   progress: Callable[[LoadProgress], None] | None = None,
                   cancel: threading.Event | None = None, referenced: bool = True) -> LoadReport:
    """Load each of ``loadables`` in order; with ``strict``, those with warnings are refused instead (listed in
    the report, not loaded). ``progress`` gets a ``LoadProgress`` per slice read. With ``referenced`` (Slicer's
    "load referenced series"), a derived object's volumes (a SEG's labels: ``Volume.referenced_series_uid``) come
    after the image series they lie on, loaded once (the grid they were placed on), unless already loaded. Raises
    ``LoadError`` (also on ``cancel``, checked between slices; nothing is returned then) or ``PixelError``."""
    options = options or LoadOptions()
    grids = options.referenced_grid if isinstance(options.referenced_grid, ReferencedGrids) else None
    if options.referenced_grid is None:
        grids = referenced_grid(db, options)
        options = replace(options, referenced_grid=grids)
    report = LoadReport(chosen=list(loadables))
    todo: list[Loadable] = []
    for item in loadables:
        (report.refused if strict and item.warnings else todo).append(item)
    for n, item in enumerate(todo, 1):
        def tick(done: int, total: int, n: int = n, name: str = item.name) -> None:
            if progress is not None:
                progress(LoadProgress(n, len(todo), name, done, total))

        if any(done.loadable.files == item.files for done in report.loaded):
            continue  # already loaded as the image a derived object refers to
        volumes = load(db, item, tick, cancel=cancel, options=options)
        if grids is not None:
            images = [v for v in volumes if not v.is_labels]
            if item.selected and images and item.series_uid:  # a SEG chosen after its CT is placed on this one
                grids.cache.setdefault(item.series_uid, (item, images[0]))
            if referenced:
                _add_referenced(report, grids, volumes)
        report.loaded.append(LoadResult(item, volumes))
    return report


def _add_referenced(report: LoadReport, grids: ReferencedGrids, volumes: list[Volume]) -> None:
    """Append the image series ``volumes`` refer to (each once, the volume they were placed on) to ``report``."""
    for uid in dict.fromkeys(v.referenced_series_uid for v in volumes if v.referenced_series_uid):
        found = grids.loaded(uid)
        if found is not None and not any(done.loadable.files == found[0].files for done in report.loaded):
            report.loaded.append(LoadResult(found[0], [found[1]]))


def examine_and_load(db: Any, series_ids: list[int], *, number: int | None = None, first_only: bool = False,
                     examine_options: ExamineOptions | None = None, load_options: LoadOptions | None = None,
                     strict: bool = False, progress: Callable[[LoadProgress], None] | None = None,
                     cancel: threading.Event | None = None, referenced: bool = True) -> LoadReport:
    """Examine the series, choose (``number`` or the default selection, see ``choose``) and load: the whole use
    case for a face that shows no choice in between (the CLI's ``load``, the browser's Enter without warnings)."""
    loadables = examine_series(db, series_ids, options=examine_options or ExamineOptions())
    chosen = choose(loadables, number, first_only=first_only)
    report = load_loadables(db, chosen, load_options, strict=strict, progress=progress, cancel=cancel,
                            referenced=referenced)
    if not chosen:
        report.reason = nothing_selected(loadables)
    return report
