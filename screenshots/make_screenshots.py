"""Regenerate the SVG screenshot of every screen from a generated database (``make screenshots``)."""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

from dicomtui.core.database import DicomDatabase
from dicomtui.core.indexer import import_paths
from dicomtui.core.synth import SeriesSpec, write_series
from dicomtui.tui.app import DicomTuiApp

HERE = Path(__file__).parent
SIZE = (120, 34)
PATIENTS = [("Anders^Astrid", "F", "19610312"), ("Brown^Oliver", "M", "19840721"), ("Chen^Mei", "F", "19790105"),
            ("Dubois^Louis", "M", "19550930"), ("Eriksen^Nora", "F", "19921118")]


def make_database(root: Path) -> Path:
    for i, (name, sex, birth) in enumerate(PATIENTS):
        for s, (modality, desc) in enumerate([("CT", "CT HEAD W/O CONTRAST"), ("MR", "MR BRAIN")][: 1 + i % 2]):
            write_series(root / "in" / f"{i}-{s}", SeriesSpec(
                patient_name=name, patient_id=f"SYN{i:04d}", sex=sex, birth_date=birth, modality=modality,
                study_description=desc, study_date=f"2024{1 + i:02d}{10 + s:02d}", seed=10 * i + s, slices=4))
    with DicomDatabase.open(root / "db") as db:
        import_paths(db, [root / "in"])
    return root / "db"


async def shoot(db_path: Path) -> None:
    app = DicomTuiApp(db_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        svg = app.export_screenshot(title="dicomtui — patients")
    (HERE / "patients.svg").write_text(svg, encoding="utf-8")


def main() -> int:
    root = Path(tempfile.gettempdir()) / "dicomtui-screenshots"  # a fixed path: it shows on screen
    shutil.rmtree(root, ignore_errors=True)
    try:
        asyncio.run(shoot(make_database(root)))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"wrote {HERE / 'patients.svg'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
