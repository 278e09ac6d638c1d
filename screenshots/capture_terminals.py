"""PNG captures of the viewer in real terminals under Xvfb: xterm -ti vt340 (sixel), kitty (graphics protocol,
direct placement on Debian's 0.26.5), and xterm with half-blocks in 24-bit colour (xterm confirms it by DECRQSS)
and in 256 colours (what a terminal that confirms nothing gets); and `dicomtui doctor terminal` in xterm and
kitty; a SEG loaded onto its CT (outlines) in xterm and kitty. ``python screenshots/capture_terminals.py``
(needs Debian xvfb, xterm, kitty, imagemagick, xdotool)
writes screenshots/terminal-*.png from the database of make_screenshots.py (the CT head phantom).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from screenshots.make_screenshots import make_database  # noqa: E402
from screenshots.xvfb_terminal import Display, dicomtui_argv, screen_started  # noqa: E402

CAPTURES = [  # file name, terminal, dicomtui options
    ("terminal-xterm-sixel", "xterm", []),
    ("terminal-kitty-graphics", "kitty", []),
    ("terminal-xterm-halfblocks-truecolor", "xterm", ["--renderer", "halfblock"]),
    ("terminal-xterm-halfblocks-256", "xterm", ["--renderer", "halfblock", "--colors", "256"]),
]


def capture(db: Path, name: str, terminal: str, options: list[str]) -> Path:
    """Open the first CT head series in ``terminal`` and save the terminal's window as ``name``.png."""
    with Display() as display:
        display.terminal(terminal, dicomtui_argv(db, *options), cols=120, rows=34)
        _, started = display.wait(screen_started, timeout=20)
        if not started:
            raise RuntimeError(f"dicomtui did not start in {terminal}")
        time.sleep(1.5)
        display.key("3", "Return")  # the series table, the first series: Head 3.0 mm
        time.sleep(4.0)
        display.key("Down", "Down", "Down")  # a few slices down, into the ventricles
        time.sleep(2.0)
        screen = display.shot()
    return save(screen, name)


def add_segmentation(db: Path) -> None:
    """A highdicom SEG of the first head CT (skull, ventricles; SeriesNumber 99: last in its study), imported."""
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    from dicomtui.core.database import DicomDatabase
    from dicomtui.core.indexer import import_paths

    folder = db.parent / "in" / "0-ct"
    ct = sorted((pydicom.dcmread(p) for p in folder.iterdir()), key=lambda d: float(d.ImagePositionPatient[2]))
    hu = np.stack([d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in ct])
    labels = np.zeros(hu.shape, np.uint8)
    labels[hu >= 1000] = 1
    labels[hu == 5] = 2
    segments = [hd.seg.SegmentDescription(
        segment_number=n, segment_label=label, segmented_property_category=codes.SCT.Tissue,
        segmented_property_type=kind, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        display_color=hd.color.CIELabColor.from_string(colour))
        for n, label, kind, colour in ((1, "Skull", codes.SCT.Bone, "wheat"),
                                       (2, "Lateral ventricles", codes.SCT.Brain, "royalblue"))]
    seg = hd.seg.Segmentation(ct, labels, hd.seg.SegmentationTypeValues.BINARY, segments, hd.UID(), 99, hd.UID(), 1,
                              "dicomtui", "screenshots", "1", "1", series_description="Segmentation")
    (db.parent / "seg").mkdir(exist_ok=True)
    seg.save_as(db.parent / "seg" / "seg.dcm")
    with DicomDatabase.open(db) as database:
        import_paths(database, [db.parent / "seg"])


def capture_overlay(db: Path, name: str, terminal: str) -> Path:
    """Load the SEG of the first patient (its CT comes first) in ``terminal``: the segments drawn on the CT."""
    with Display() as display:
        display.terminal(terminal, dicomtui_argv(db), cols=120, rows=34)
        _, started = display.wait(screen_started, timeout=20)
        if not started:
            raise RuntimeError(f"dicomtui did not start in {terminal}")
        time.sleep(1.5)
        display.key("3", "End", "Return")  # the series table, its last series: the SEG
        time.sleep(5.0)
        display.key("Down", "Down", "Down")  # into the ventricles
        time.sleep(2.0)
        screen = display.shot()
    return save(screen, name)


def capture_doctor(db: Path, terminal: str) -> Path:
    """`dicomtui doctor terminal` in ``terminal``: its answers, the test pattern per renderer, the choice."""
    with Display() as display:
        argv = dicomtui_argv(db, "doctor", "terminal")
        display.terminal(terminal, [*argv[:2], argv[2].replace("exec ", "") + "; sleep 60"], cols=100, rows=30)
        time.sleep(6.0)
        screen = display.shot()
    return save(screen, f"terminal-doctor-{terminal}")


def save(screen: np.ndarray, name: str) -> Path:
    """Save ``screen`` cropped to the terminal's window as screenshots/``name``.png."""
    drawn = np.flatnonzero((screen != 0).any(axis=2).any(axis=0))
    rows = np.flatnonzero((screen != 0).any(axis=2).any(axis=1))
    path = HERE / f"{name}.png"
    Image.fromarray(screen[:rows.max() + 1, :drawn.max() + 1].astype(np.uint8)).save(path, optimize=True)
    return path


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="dicomtui-capture-") as tmp:
        db = make_database(Path(tmp))
        for name, terminal, options in CAPTURES:
            print(capture(db, name, terminal, options))
        for terminal in ("xterm", "kitty"):
            print(capture_doctor(db, terminal))
        add_segmentation(db)
        print(capture_overlay(db, "terminal-xterm-sixel-overlay", "xterm"))
        print(capture_overlay(db, "terminal-kitty-overlay", "kitty"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
