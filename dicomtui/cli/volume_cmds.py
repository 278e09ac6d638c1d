"""``volume-to-dicom``: a NIfTI or NRRD volume written as a new DICOM series into the database (and a folder)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..core.levels import Level
from .database_cmds import open_database
from .output import EXIT_FATAL, EXIT_OK, EXIT_PARTIAL, err, with_progress


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``volume-to-dicom`` to the sub-parsers ``sub``."""
    from ..core.export.volume_series import DEFAULT_SERIES_NUMBER, DEFAULT_UID_ROOT

    p = sub.add_parser("volume-to-dicom", help="write a NIfTI or NRRD volume as a new DICOM series in the database")
    p.add_argument("image", metavar="IMAGE", help="IMAGE.nii, IMAGE.nii.gz, IMAGE.nrrd or IMAGE.nhdr (one 3-D volume)")
    p.add_argument("--like", metavar="SERIES_UID",
                   help="the series whose patient, study and frame of reference the new one joins (a unique prefix "
                        "will do; its modality chooses CT, MR or Secondary Capture); without it, a new patient and "
                        "study")
    p.add_argument("--volume", type=int, metavar="N", help="which volume of a 4-D image (from 0)")
    p.add_argument("--all-volumes", action="store_true",
                   help="every volume of a 4-D image as ONE series (each slice position once per volume, "
                        "TemporalPositionIdentifier 1, 2, …), as scanners store a time series")
    p.add_argument("--description", default="", metavar="TEXT",
                   help="SeriesDescription (default: the image's name and \"(derived)\")")
    p.add_argument("--series-number", type=int, default=DEFAULT_SERIES_NUMBER, metavar="N",
                   help=f"SeriesNumber (default {DEFAULT_SERIES_NUMBER})")
    p.add_argument("--uid-root", default=DEFAULT_UID_ROOT, metavar="ROOT",
                   help=f"the root of the new UIDs (default {DEFAULT_UID_ROOT}, pydicom's)")
    p.add_argument("--modality", default="", metavar="MOD",
                   help="without --like: CT or MR (else OT, written as Secondary Capture)")
    p.add_argument("--patient-name", default="", metavar="NAME", help="without --like: PatientName (default "
                                                                       "Anonymous)")
    p.add_argument("--patient-id", default="", metavar="ID", help="without --like: PatientID (default: generated)")
    p.add_argument("--study-description", default="", metavar="TEXT", help="without --like: StudyDescription")
    p.add_argument("--enhanced", action="store_true",
                   help="one multi-frame file (Legacy Converted Enhanced CT/MR Image) instead of one file per slice")
    p.add_argument("-o", "--output", metavar="DIR", help="also write the files to DIR (IM0001.dcm…, never over a file)")
    p.add_argument("--no-database", action="store_true", help="write to DIR only (with -o), not into the database")
    p.add_argument("--json", action="store_true", help="print the report as JSON (slope, intercept, files…)")
    p.set_defaults(handler=cmd_volume_to_dicom)


def _series_uid(db, text: str) -> str | None:
    """The SeriesInstanceUID ``text`` names (a unique prefix or ``series:ID``); None, said, when none."""
    from ..core import selection

    resolved = selection.resolve(db, [text], levels=[Level.SERIES])
    found = [item.id for name, item in resolved.names if name == text and item.level is Level.SERIES]
    if not found:
        err(f"no series {text} in the database")
        return None
    row = db.get(Level.SERIES, found[0])
    return str(row["SeriesInstanceUID"]) if row else None


def cmd_volume_to_dicom(args: argparse.Namespace, db_path: Path) -> int:
    """Read IMAGE, write it as a new series (core.export.volume_series.write_volume_series), print the summary
    (or ``--json``). An unreadable image, a bad UID root or a folder that holds the names already is a
    DicomtuiError (exit 2); exit 1 when some files could not be stored."""
    from ..core.export.volume_series import SeriesOptions, write_volume_series
    from ..core.net.nodes import copy_floor
    from ..core.volume_read import read_image, read_image_volumes

    if args.no_database and not args.output:
        err("--no-database writes nowhere without -o DIR")
        return EXIT_FATAL
    if args.all_volumes and args.volume is not None:
        err("--all-volumes and --volume N: choose one")
        return EXIT_FATAL
    volume = read_image_volumes(args.image) if args.all_volumes else read_image(args.image, args.volume)
    options = SeriesOptions(description=args.description, series_number=args.series_number, uid_root=args.uid_root,
                            modality=args.modality.upper(), patient_name=args.patient_name,
                            patient_id=args.patient_id, study_description=args.study_description,
                            source=Path(args.image).name, enhanced=args.enhanced, min_free=copy_floor("copy"))
    db = None if args.no_database else open_database(db_path)
    try:
        like = None
        if args.like:
            if db is None:
                err("--like needs the database (leave out --no-database)")
                return EXIT_FATAL
            like = _series_uid(db, args.like)
            if like is None:
                return EXIT_FATAL
        report = with_progress(lambda progress: write_volume_series(volume, options, db=db, like=like,
                                                                    folder=args.output, progress=progress),
                               "writing slices")
    finally:
        if db is not None:
            db.close()
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
    return EXIT_PARTIAL if report.problems else EXIT_OK
