"""``labels-to-seg``: a NIfTI or NRRD label image written as a DICOM Segmentation of a series in the database."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .database_cmds import open_database
from .output import EXIT_FATAL, EXIT_OK, EXIT_PARTIAL, err
from .volume_cmds import _series_uid


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``labels-to-seg`` to the sub-parsers ``sub``."""
    from ..core.export.seg_write import DEFAULT_SEG_SERIES_NUMBER
    from ..core.export.volume_series import DEFAULT_UID_ROOT

    p = sub.add_parser("labels-to-seg", help="write a label image (NIfTI/NRRD) as a DICOM SEG of a series")
    p.add_argument("labels", metavar="LABELS", help="LABELS.nii, .nii.gz, .nrrd or .nhdr: whole numbers, 0 = "
                                                     "background, one segment per other value")
    p.add_argument("--like", required=True, metavar="SERIES_UID",
                   help="the image series the labels segment (a unique prefix will do): the SEG references it and "
                        "lies on its grid")
    p.add_argument("--segments", metavar="JSON", help='names and codes by label value, a file or the text: '
                                                      '{"1": {"label": "liver", "category": "Tissue", "type": '
                                                      '"Liver", "color": [255, 0, 0]}}')
    p.add_argument("--description", default="", metavar="TEXT", help="SeriesDescription (default: LABELS' name)")
    p.add_argument("--series-number", type=int, default=DEFAULT_SEG_SERIES_NUMBER, metavar="N",
                   help=f"SeriesNumber (default {DEFAULT_SEG_SERIES_NUMBER})")
    p.add_argument("--uid-root", default=DEFAULT_UID_ROOT, metavar="ROOT",
                   help=f"the root of the new UIDs (default {DEFAULT_UID_ROOT}, pydicom's)")
    p.add_argument("-o", "--output", metavar="DIR", help="also write DIR/SEG.dcm (never over a file)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=cmd_labels_to_seg)


def cmd_labels_to_seg(args: argparse.Namespace, db_path: Path) -> int:
    """Read LABELS and the segments JSON, write the SEG (core.export.seg_write), print the summary. An unreadable
    image or JSON, labels that are not whole numbers, a series that is not a stack of images: a DicomtuiError
    (exit 2); exit 1 when the SEG could not be stored."""
    from ..core.export.seg_write import segment_specs, write_labels_as_seg
    from ..core.net.nodes import copy_floor
    from ..core.volume_read import read_image

    specs = None
    if args.segments:
        text = args.segments
        if not text.lstrip().startswith("{"):
            try:
                text = Path(text).expanduser().read_text()
            except OSError as exc:
                err(f"cannot read the segments JSON {args.segments}: {exc.strerror or exc}")
                return EXIT_FATAL
        specs = segment_specs(text)
    labels = read_image(args.labels)
    with open_database(db_path) as db:
        like = _series_uid(db, args.like)
        if like is None:
            return EXIT_FATAL
        report = write_labels_as_seg(db, labels, like, specs, folder=args.output, description=args.description,
                                     series_number=args.series_number, uid_root=args.uid_root,
                                     min_free=copy_floor("copy"))
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
    for problem in report.problems:
        err(problem)
    return EXIT_PARTIAL if report.problems else EXIT_OK
