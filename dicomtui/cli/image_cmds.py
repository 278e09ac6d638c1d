"""Commands on images: ``examine`` (the ways a series can be loaded) and ``load`` (a series → NIfTI or NRRD)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.levels import Level
from .database_cmds import open_database
from .output import EXIT_FATAL, EXIT_OK, EXIT_PARTIAL, err, with_progress

if TYPE_CHECKING:
    from ..core.examine import Loadable


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``examine`` and ``load`` to the sub-parsers ``sub``."""
    p = sub.add_parser("examine", help="list the ways each series can be loaded, with warnings")
    p.add_argument("uids", nargs="+", metavar="SERIES_UID")
    p.add_argument("--split-by-time", action="store_true", help="also split sub-series by ContentTime/TriggerTime")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_examine, from_settings=_examine_options_from_settings)

    p = sub.add_parser("load", help="load a series as a volume and write it as NIfTI or NRRD")
    p.add_argument("uid", metavar="SERIES_UID")
    p.add_argument("--loadable", type=int, metavar="N",
                   help="which loadable (number from `examine`; default: the selected one)")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="OUT.nii, OUT.nii.gz or OUT.nrrd, or a folder: PatientID_SeriesNumber_Description.nii.gz in it")
    p.add_argument("--force", action="store_true",
                   help="overwrite OUT when it exists (else the name gets a letter suffix, as dcm2niix does)")
    p.add_argument("--strict", action="store_true", help="fail (exit 1) when the loadable has warnings")
    p.add_argument("--regularize", action="store_true",
                   help="resample an unevenly spaced, gapped or tilted series onto a regular grid")
    p.add_argument("--split-by-time", action="store_true", help="also split sub-series by ContentTime/TriggerTime")
    p.add_argument("--no-referenced", dest="referenced", action="store_false",
                   help="a segmentation alone: without the image series it refers to (written by default)")
    p.set_defaults(handler=cmd_load, from_settings=_load_options_from_settings)


def _examine_options_from_settings(args: argparse.Namespace, settings) -> None:
    args.split_by_time = args.split_by_time or settings.split_by_time


def _load_options_from_settings(args: argparse.Namespace, settings) -> None:
    _examine_options_from_settings(args, settings)
    args.regularize = args.regularize or settings.regularize


def _series_ids(db, uids: list[str]) -> list[int] | None:
    """The database ids of the series named by ``uids`` (in order; a unique prefix or a row id will do); None,
    after saying which, when a UID names no series (a study or instance UID does not count). An ambiguous
    prefix raises SelectionError (main: its sentence, exit 2)."""
    from ..core import selection

    resolved = selection.resolve(db, uids, levels=[Level.SERIES])
    ids = []
    for uid in uids:
        found = [item.id for text, item in resolved.names if text == uid and item.level is Level.SERIES]
        if not found:
            err(f"no series {uid} in the database")
            return None
        ids.append(found[0])
    return ids


def _examine(db, uids: list[str], split_by_time: bool = False) -> list[Loadable] | None:
    """The loadables of the series named by ``uids``, numbered from 1 as ``load --loadable`` takes them."""
    from ..core.examine import ExamineOptions, examine_series

    ids = _series_ids(db, uids)
    if ids is None:
        return None
    return examine_series(db, ids, options=ExamineOptions(split_by_time=split_by_time))


def cmd_examine(args: argparse.Namespace, db_path: Path) -> int:
    """The loadables of the series, numbered as ``load --loadable`` takes them; * marks the default. A series
    that derived objects refer to says so once ("referenced by 2 segmentations, 1 structure set")."""
    from ..core.examine import referenced_by_line

    with open_database(db_path, create=False, read_only=True) as db:
        loadables = _examine(db, args.uids, args.split_by_time)
        if loadables is None:
            return EXIT_FATAL
        referrers = {uid: referenced_by_line(db, uid) for uid in dict.fromkeys(i.series_uid for i in loadables)}
    if args.json:
        print(json.dumps([dict(index=n, **item.to_dict(), referenced_by=referrers[item.series_uid])
                          for n, item in enumerate(loadables, 1)], indent=2))
        return EXIT_OK
    said: set[str] = set()
    for n, item in enumerate(loadables, 1):
        mark = "*" if item.selected else " "
        print(f"{mark} {n:2d}  {item.name}  [{item.plugin}, confidence {item.confidence:.2f}, "
              f"{len(item.instances)} images]")
        for warning in item.warnings:
            print(f"        warning: {warning}")
        for note in item.notes:  # e.g. a PET's SUV factors
            print(f"        {note}")
        if referrers[item.series_uid] and item.series_uid not in said:
            said.add(item.series_uid)
            print(f"        {referrers[item.series_uid]}")
    print("(* = loaded by default)")
    return EXIT_OK


def _output_folder(output: str) -> Path | None:
    """The folder ``load -o`` names (an existing folder, or a path ending in a separator: created when the volume
    is written), else None: a file."""
    path = Path(output).expanduser()
    return path if output.endswith(("/", "\\")) or path.is_dir() else None


def _output_path(output: str, folder: Path | None, stem: str, force: bool) -> Path:
    """Where ``load`` writes: ``output``, or ``folder/stem.nii.gz`` (the folder, or the file's missing parent
    folders, created); an existing file is overwritten only with ``force``, else the next free name is taken
    (dcm2niix's suffix) and said. Raises VolumeWriteError when the folder cannot be created."""
    from ..core.errors import VolumeWriteError
    from ..core.naming import free_path

    target = Path(output).expanduser() if folder is None else folder / f"{stem}.nii.gz"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VolumeWriteError(f"cannot create the folder {target.parent}: {exc.strerror or exc}") from None
    free = target if force else free_path(target)
    if free != target:
        err(f"{target} exists: writing {free.name} instead (--force overwrites)")
    return free


def cmd_load(args: argparse.Namespace, db_path: Path) -> int:
    """Examine, choose (--loadable N, else the default selection), load, write: several selected loadables are
    written each to its own file, numbered (OUT-1.nii, OUT-2.nii…), each line naming its loadable. ``-o DIR``
    names the file from the series; an existing file is kept (the next free name, said) unless --force. A bad output
    name, an unloadable series (LoadError, PixelError; also a series of objects without pixels: "…: a structured
    report: no image to load") or an unwritable volume (VolumeWriteError) is a DicomtuiError: main prints its
    sentence and exits 2. Exit 1 when --strict refuses a loadable with warnings."""
    from ..core.errors import LoadError
    from ..core.examine import LoadOptions, LoadReport, choose, load_loadables, nothing_selected
    from ..core.naming import output_stem
    from ..core.volume_io import output_format, write_volume

    folder = _output_folder(args.output)
    if folder is None:
        output_format(args.output)  # before any work: a wrong extension fails at once
    with open_database(db_path, create=False, read_only=True) as db:
        loadables = _examine(db, [args.uid], args.split_by_time)
        if loadables is None:
            return EXIT_FATAL
        if args.loadable is not None and not 1 <= args.loadable <= len(loadables):
            err(f"--loadable must be 1 to {len(loadables)} (see `dicomtui examine {args.uid}`)")
            return EXIT_FATAL
        chosen = choose(loadables, args.loadable)
        if not chosen:
            raise LoadError(f"{args.uid}: {nothing_selected(loadables)}")
        stem = output_stem(db, chosen[0].series_uid, chosen[0].name)  # for -o DIR
        base = _output_path(args.output, folder, stem, args.force)
        for warning in (w for item in chosen for w in item.warnings):
            err(f"warning: {warning}")
        # one copy, no volume in memory; --regularize goes through the volume, which says what it resampled
        if len(chosen) == 1 and not args.regularize and not (args.strict and chosen[0].warnings):
            from ..core.nifti_stream import stream_nifti

            streamed = with_progress(lambda progress: stream_nifti(
                db, chosen[0], base, LoadOptions(regularize=args.regularize), progress=progress),
                f"Loading {chosen[0].name}")
            if streamed is not None:
                print(f"wrote {streamed.path}: {streamed.describe()} ({chosen[0].name})")
                return EXIT_OK

        def work(progress: Callable[[int, int], None] | None) -> LoadReport:
            tick = None if progress is None else lambda p: progress(p.done, p.total)
            return load_loadables(db, chosen, LoadOptions(regularize=args.regularize), strict=args.strict,
                                  progress=tick, referenced=args.referenced)

        report = with_progress(work, f"Loading {', '.join(item.name for item in chosen)}")
    if report.refused:
        err("not written (--strict and the loadable has warnings)")
        return EXIT_PARTIAL
    if not report.loaded:
        err(report.summary())
        return EXIT_FATAL
    shown = {w for item in chosen for w in item.warnings}
    files = []  # what each file holds: a loadable's volumes, or one image of a loadable of images one by one
    for result in report.loaded:
        for warning in dict.fromkeys(w for v in result.volumes for w in v.warnings if w not in shown):
            err(f"warning: {warning}")  # found while loading: a file left out, what regularize did
        files += [([v], result) for v in result.volumes] if result.one_by_one else [(result.volumes, result)]
    images = [f for f in files if not f[0][0].is_labels]
    for n, (volumes, result) in enumerate(files, 1):
        if volumes[0].is_labels and images:  # a SEG beside the image it lies on: OUT-labels.nii.gz
            out = _output_path(suffixed(str(base), "-labels"), None, "", args.force)
        else:
            out = base if len(files) == 1 or len(images) == 1 else _output_path(numbered(str(base), n), None, "",
                                                                                args.force)
        # labels: with their JSON; overlapping segments one file each (OUT-N)
        written = _write_labels(volumes, out, args.force) if volumes[0].is_labels else write_volume(volumes, out)
        first = volumes[0]
        i, j, k = first.array.shape[2::-1]
        count = f" × {len(volumes)} volumes" if len(volumes) > 1 else ""
        count = f", one file per segment ({len(volumes)})" if count and first.is_labels else count
        kind = "RGB" if first.is_rgb else str(first.array.dtype)
        print(f"wrote {', '.join(map(str, written))}: {i}x{j}x{k} voxels{count} of {kind}, spacing "
              f"{' x '.join(f'{v:.4g}' for v in first.spacing)} mm ({result.loadable.name}"
              f"{f', {first.name}' if result.one_by_one else ''})")
    return EXIT_OK


def numbered(output: str, n: int) -> str:
    """``OUT.nii.gz`` → ``OUT-2.nii.gz``: the name of the ``n``-th of several loadables written at once."""
    return suffixed(output, f"-{n}")


def suffixed(output: str, suffix: str) -> str:
    """``OUT.nii.gz`` → ``OUT{suffix}.nii.gz`` (before the format's extension)."""
    from ..core.volume_io import output_format

    ext = output_format(output)
    return f"{output[: len(output) - len(ext)]}{suffix}{output[len(output) - len(ext):]}"


def _write_labels(volumes: list, out: Path, force: bool) -> list[Path]:
    """Label volumes written at ``out`` with ``OUT.json`` beside them; returns the files written. One label
    volume (segments that do not overlap): ``out`` itself. Several (overlapping segments or ROIs, one volume
    each, a voxel may be in more than one): one 3D file per volume, ``OUT-N`` for the N-th (its voxels hold what
    the volume holds: a SEG segment's number, an RTSTRUCT ROI's 1; the JSON's "number" says which), as
    plastimatch (a mask per structure) and dcmqi's segimage2itkimage (a file per segment) write them, and what
    ITK-SNAP, 3D Slicer and nnU-Net/MONAI read as a label image (a 4D file is read as a time series)."""
    from ..core.volume_io import write_volume

    if len(volumes) == 1:
        return [*write_volume(volumes, out), _write_segments(volumes, out, [out])]
    written: list[Path] = []
    for n, volume in enumerate(volumes, 1):
        written += write_volume([volume], _output_path(suffixed(str(out), f"-{n}"), None, "", force))
    return [*written, _write_segments(volumes, out, written)]


def _write_segments(volumes: list, out: Path, files: list[Path]) -> Path:
    """``OUT.json`` beside label images: what each value of each file means — number, label, RGB colour,
    category, type, algorithm — which NIfTI cannot hold. ``volumes[n]`` lists the segments of ``files[n]``."""
    import dataclasses

    from ..core.volume_io import output_format

    ext = output_format(str(out))
    target = Path(str(out)[: len(str(out)) - len(ext)] + ".json")
    target.write_text(json.dumps({
        "referenced_series_uid": volumes[0].referenced_series_uid, "series_uid": volumes[0].series_uid,
        "files": [Path(f).name for f in files],
        "volumes": [[dataclasses.asdict(s) for s in v.segments] for v in volumes]}, indent=2))
    return target
