"""SEG plugin: Segmentation Storage (PS3.3 A.51) as label volumes on the grid of the image series it segments.

Examine offers one loadable per SEG instance (from the stored rows: no file is opened). Load reads the file with
highdicom (``segread``, ``get_volume`` per segment), puts each segment on the referenced series' grid
(``LoadOptions.referenced_grid``: this plugin never imports an image plugin) — exactly when the SEG's frames lie on
that grid's voxels, else by nearest neighbour with a warning — and returns one label volume when no two segments
overlap, else one label volume per segment. Fractional segments are binarised at 0.5 of their maximum (said).
Without the referenced series in the database the SEG's own frame geometry is used (a warning says so).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import LoadError
from .plugin import (
    CONF_ALL,
    EXAMINE_DEFAULTS,
    LOAD_DEFAULTS,
    ExamineOptions,
    Loadable,
    LoadOptions,
    Progress,
    Row,
    check_cancel,
    series_name,
)

if TYPE_CHECKING:
    from ..volume import Segment, Volume

NAME = name = "seg"
SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"  # PS3.4 B.5
# The SOP classes this plugin reads: rows of these classes with pixels reach no other plugin (examine_series).
SOP_CLASSES = frozenset((SEGMENTATION_STORAGE,))
FRACTIONAL_THRESHOLD = 0.5  # a fractional voxel belongs to the segment from half its maximum (Slicer's choice)
# Index distance under which a SEG frame is taken to lie on a grid voxel: DS values keep ~6 significant digits.
_ON_GRID = 1e-3


def examine(rows: list[Row], options: ExamineOptions = EXAMINE_DEFAULTS) -> list[Loadable]:
    """One loadable per SEG instance with pixel data (CONF_ALL: the only reading of its series; the image plugins
    never see these rows); a SEG without Pixel Data is nonimage's."""
    out = []
    for row in rows:
        if row.get("SOPClassUID") != SEGMENTATION_STORAGE or not row.get("has_pixels"):
            continue
        title = f"{series_name(row)} (segmentation)"
        if sum(1 for r in rows if r.get("SOPClassUID") == SEGMENTATION_STORAGE) > 1:
            title = f"{series_name(row)} (segmentation {row.get('InstanceNumber') or row['SOPInstanceUID']})"
        out.append(Loadable(title, [row], NAME, CONF_ALL, series_uid=row.get("SeriesInstanceUID", "")))
    return out


def load(db: Any, loadable: Loadable, progress: Progress | None = None, cancel: threading.Event | None = None,
         options: LoadOptions = LOAD_DEFAULTS) -> list[Volume]:
    """The label volumes of one SEG instance: one ``[k, j, i]`` uint8/uint16 array of segment numbers (0 =
    background) when no voxel is in two segments, else one per segment (its number where it is). On the grid of
    the first referenced series (ReferencedSeriesSequence, PS3.3 C.8.20.2) that ``options.referenced_grid`` finds,
    else on the SEG's own frame geometry. ``progress(done, total)`` counts segments. Raises ``LoadError`` (not
    readable by highdicom, no frame geometry, ``cancel`` set)."""
    import highdicom as hd

    row = loadable.instances[0]
    path = db.abspath(row["path"], bool(row["stored"]))
    try:
        seg = hd.seg.segread(path)
    except Exception as exc:  # noqa: BLE001 - highdicom's reasons vary (missing module attributes, codecs)
        raise LoadError(f"{loadable.name}: highdicom cannot read this segmentation ({type(exc).__name__}: {exc})"
                        ) from None
    warnings = list(loadable.warnings)
    referenced = [str(item.SeriesInstanceUID) for item in seg.get("ReferencedSeriesSequence", [])]
    grid = _find_grid(referenced, _stored_references(db, row), options, warnings)
    fractional = str(seg.SegmentationType) == "FRACTIONAL"
    if fractional:
        warnings.append(f"fractional segmentation: a voxel is in a segment from {FRACTIONAL_THRESHOLD:g} of the "
                        f"maximum on")
    numbers = [int(n) for n in seg.segment_numbers]
    placed: dict[int, np.ndarray] = {}  # segment number → flat voxel indices on the target grid
    shape: tuple[int, int, int] | None = None
    affine: np.ndarray | None = None
    resampled = False
    for done, number in enumerate(numbers):
        check_cancel(cancel, loadable.name, done, len(numbers))
        source = _segment_volume(seg, number, loadable.name)
        if source is None:
            placed[number] = np.zeros(0, dtype=np.int64)
            continue
        mask, source_affine = source
        if grid is None:
            shape, affine = (shape, affine) if shape is not None else _own_grid(seg, loadable.name)
        else:
            shape, affine = grid.array.shape[:3], grid.affine
        assert affine is not None and shape is not None
        inside = mask >= FRACTIONAL_THRESHOLD if fractional else mask > 0
        indices, on_grid = place_mask(inside, source_affine, shape, affine)
        resampled |= not on_grid
        placed[number] = indices
        if progress is not None:
            progress(done + 1, len(numbers))
    if shape is None or affine is None:
        shape, affine = (grid.array.shape[:3], grid.affine) if grid is not None else _own_grid(seg, loadable.name)
    if resampled:
        warnings.append(f"the segmentation's frames do not lie on the voxels of series {grid_uid(grid)}: resampled "
                        f"onto its grid (nearest neighbour)")
    segments = {s.number: s for s in _segments(seg)}
    return _label_volumes(placed, segments, shape, affine, loadable, warnings, grid, row, resampled)


def grid_uid(grid: Volume | None) -> str:
    return grid.series_uid if grid is not None and grid.series_uid else "?"


def _stored_references(db: Any, row: Row) -> list[str]:
    """The image series the stored references of the SEG's series resolve to (the frame-of-reference fallback
    included: ``references.references_of``); [] when the database cannot say."""
    from .references import references_of

    try:
        return references_of(db, str(row.get("SeriesInstanceUID") or ""))
    except Exception:  # noqa: BLE001 - a database without the refs column (never migrated) or a stand-in
        return []


def _find_grid(referenced: list[str], stored: list[str], options: LoadOptions, warnings: list[str]) -> Volume | None:
    """The image volume of the first referenced series the database holds; else of a series the stored references
    resolve to (same frame of reference: said); None, with a warning, when none."""
    if options.referenced_grid is not None:
        for uid in [*referenced, *(u for u in stored if u not in referenced)]:
            grid = options.referenced_grid(uid)
            if grid is not None:
                if not grid.series_uid:
                    grid.series_uid = uid
                if uid not in referenced:
                    warnings.append(f"the segmentation names no series in the database: placed on series {uid}, "
                                    f"which shares its frame of reference")
                return grid
    named = ", ".join(referenced) or "none named"
    warnings.append(f"the referenced series ({named}) is not in the database: the segmentation is shown on its "
                    f"own frame geometry")
    return None


def _segment_volume(seg: Any, number: int, name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """One segment as highdicom reads it (``get_volume``: frames placed by their positions, sparse frames zero,
    fractional values rescaled to 0-1): the array ``[a, b, c]`` and our affine ((c, b, a) → LPS); None when the
    segment has no frame."""
    try:
        volume = seg.get_volume(segment_numbers=[number], combine_segments=False, rescale_fractional=True)
    except (ValueError, RuntimeError) as exc:
        if "no frames" in str(exc).lower() or "empty" in str(exc).lower():
            return None
        raise LoadError(f"{name}: segment {number} has no regular frame geometry highdicom can place ({exc})"
                        ) from None
    array = np.asarray(volume.array)
    if array.ndim == 4:
        array = array[..., 0]
    return array, _ours(np.asarray(volume.affine, dtype=float))


def _ours(hd_affine: np.ndarray) -> np.ndarray:
    """highdicom's affine maps the array index (a, b, c) = (slice, row, column); ours maps (i, j, k) = (column,
    row, slice): the same matrix with its first and third columns swapped."""
    return hd_affine[:, [2, 1, 0, 3]]


def _own_grid(seg: Any, name: str) -> tuple[tuple[int, int, int], np.ndarray]:
    """The SEG's own geometry: the volume highdicom builds from all its frames (every segment's span)."""
    try:
        volume = seg.get_volume(combine_segments=False, rescale_fractional=False)
    except (ValueError, RuntimeError) as exc:
        raise LoadError(f"{name}: the segmentation's frames have no regular geometry and no referenced series is "
                        f"in the database to place them on ({exc})") from None
    a, b, c = volume.spatial_shape
    return (a, b, c), _ours(np.asarray(volume.affine, dtype=float))


def place_mask(mask: np.ndarray, source_affine: np.ndarray, shape: tuple[int, ...], affine: np.ndarray,
           ) -> tuple[np.ndarray, bool]:
    """The flat indices (into ``shape`` = [k, j, i]) of the target voxels a boolean mask ``[c, b, a]`` (affine
    ``source_affine``, (a, b, c) → LPS) covers, and whether its voxels lie on the target's (exact placement)
    rather than being resampled by nearest neighbour (each target voxel takes the source voxel nearest it)."""
    to_target = np.linalg.inv(affine) @ source_affine  # source index (a, b, c, 1) → target index (i, j, k, 1)
    rot, shift = to_target[:3, :3], to_target[:3, 3]
    exact = bool(np.allclose(rot, np.round(rot), atol=_ON_GRID) and np.allclose(np.abs(np.round(rot)).sum(0), 1)
                 and np.allclose(shift, np.round(shift), atol=_ON_GRID))
    nk, nj, ni = shape
    if exact:
        k, j, i = np.nonzero(mask)
        target = np.round(np.stack([i, j, k, np.ones_like(i)]).T @ to_target.T).astype(np.int64)[:, :3]
    else:
        target = _nearest(mask, to_target, shape)
    ti, tj, tk = target[:, 0], target[:, 1], target[:, 2]
    keep = (ti >= 0) & (ti < ni) & (tj >= 0) & (tj < nj) & (tk >= 0) & (tk < nk)
    return np.unique((tk[keep] * nj + tj[keep]) * ni + ti[keep]), exact


def _nearest(mask: np.ndarray, to_target: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Target voxels (rows of (i, j, k)) whose nearest source voxel is in ``mask``, over the target box the mask's
    bounding box maps to, one target slice at a time (memory of one slice)."""
    nk, nj, ni = shape
    if not mask.any():
        return np.zeros((0, 3), dtype=np.int64)
    c, b, a = (np.nonzero(mask.any(axis=axes))[0] for axes in ((1, 2), (0, 2), (0, 1)))
    corners = np.array([[x, y, z, 1.0] for x in (a[0] - 1, a[-1] + 1) for y in (b[0] - 1, b[-1] + 1)
                        for z in (c[0] - 1, c[-1] + 1)]) @ to_target.T
    lo = np.maximum(np.floor(corners[:, :3].min(0)).astype(int), 0)
    hi = np.minimum(np.ceil(corners[:, :3].max(0)).astype(int), [ni - 1, nj - 1, nk - 1])
    back = np.linalg.inv(to_target)
    jj, ii = np.mgrid[lo[1]:hi[1] + 1, lo[0]:hi[0] + 1]
    found = []
    for k in range(lo[2], hi[2] + 1):
        points = np.stack([ii.ravel(), jj.ravel(), np.full(ii.size, k), np.ones(ii.size)]).T
        src = np.round(points @ back.T[:, :3]).astype(np.int64)  # (a, b, c) per target voxel
        inside = ((src[:, 0] >= 0) & (src[:, 0] < mask.shape[2]) & (src[:, 1] >= 0) & (src[:, 1] < mask.shape[1])
                  & (src[:, 2] >= 0) & (src[:, 2] < mask.shape[0]))
        hit = np.zeros(len(src), dtype=bool)
        hit[inside] = mask[src[inside, 2], src[inside, 1], src[inside, 0]]
        found.append(points[hit, :3].astype(np.int64))
    return np.concatenate(found) if found else np.zeros((0, 3), dtype=np.int64)


def _segments(seg: Any) -> list[Segment]:
    """Each segment's description (PS3.3 C.8.20.4): number, SegmentLabel, RecommendedDisplayCIELabValue as RGB
    (highdicom's CIELab conversion; a default colour per number when absent), category and type CodeMeanings,
    SegmentAlgorithmType."""
    from highdicom.color import CIELabColor

    from ..volume import Segment

    out = []
    for number in seg.segment_numbers:
        item = seg.get_segment_description(number)
        lab = item.get("RecommendedDisplayCIELabValue")
        color = CIELabColor.from_dicom_value(tuple(int(v) for v in lab)).to_rgb() if lab else default_color(number)
        category = item.get("SegmentedPropertyCategoryCodeSequence") or [None]
        kind = item.get("SegmentedPropertyTypeCodeSequence") or [None]
        out.append(Segment(int(number), str(item.get("SegmentLabel") or f"segment {number}"),
                           tuple(int(v) for v in color),  # type: ignore[arg-type]
                           str(getattr(category[0], "CodeMeaning", "") or ""),
                           str(getattr(kind[0], "CodeMeaning", "") or ""),
                           str(item.get("SegmentAlgorithmType") or "")))
    return out


# Slicer's first label colours (GenericAnatomyColors 1-8): a segment without a recommended colour gets one.
_DEFAULT_COLORS = [(128, 174, 128), (241, 214, 145), (177, 122, 101), (111, 184, 210), (216, 101, 79),
                   (221, 130, 101), (144, 238, 144), (192, 104, 88)]


def default_color(number: int) -> tuple[int, int, int]:
    """A display colour for segment ``number`` (1…) that has none recorded."""
    return _DEFAULT_COLORS[(number - 1) % len(_DEFAULT_COLORS)]


def _label_volumes(placed: dict[int, np.ndarray], segments: dict[int, Segment], shape: tuple[int, ...],
                   affine: np.ndarray, loadable: Loadable, warnings: list[str], grid: Volume | None, row: Row,
                   resampled: bool) -> list[Volume]:
    """One label volume of every segment when none overlaps another, else one per segment."""
    from ..volume import Segment, Volume

    size = int(np.prod(shape))
    counts = np.zeros(size, dtype=np.uint16)
    for indices in placed.values():
        counts[indices] += 1
    overlap = bool((counts > 1).any())
    dtype = np.uint8 if max(placed, default=0) < 256 else np.uint16
    if overlap:
        warnings = [*warnings, "segments overlap: one label volume per segment"]
    groups = [[n] for n in placed] if overlap else [list(placed)]
    out = []
    for group in groups:
        flat = np.zeros(size, dtype=dtype)
        for number in group:
            flat[placed[number]] = number
        described = tuple(segments.get(n) or Segment(n, f"segment {n}", default_color(n)) for n in group)
        title = loadable.name if not overlap else f"{loadable.name}: {described[0].label}"
        out.append(Volume(flat.reshape(shape), affine.copy(), name=title, modality="SEG", warnings=list(warnings),
                          resampled=resampled, segments=described, series_uid=str(row.get("SeriesInstanceUID") or ""),
                          referenced_series_uid=grid.series_uid if grid is not None else "",
                          instance_uids=list(grid.instance_uids) if grid is not None else []))
    return out
