"""Regenerate the SVG screenshot of every screen from a generated database (``make screenshots``).

The data is synthetic (dicomtui.core.synth): a CT head phantom, an MR series, a series with a missing slice (for
the examine warnings) and a few more patients. The image renderer is the half-block one, as in a plain terminal.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from textual.widgets import Button, Input, SelectionList, Switch

from dicomtui.core.database import DicomDatabase
from dicomtui.core.indexer import import_paths
from dicomtui.core.net.nodes import LocalNode, Nodes, RemoteNode, save_nodes
from dicomtui.core.synth import SeriesSpec, head_phantom, write_series
from dicomtui.tui.app import DicomTuiApp

HERE = Path(__file__).parent
SIZE = (120, 34)
PATIENTS = [("Anders^Astrid", "F", "19610312"), ("Brown^Oliver", "M", "19840721"), ("Chen^Mei", "F", "19790105"),
            ("Dubois^Louis", "M", "19550930"), ("Eriksen^Nora", "F", "19921118"), ("Müller^Jürgen", "M", "19680214")]


def make_database(root: Path) -> Path:
    head = dict(rows=192, cols=160, pixel_spacing=(1.0, 1.0), slice_spacing=3.0, slices=48,
                origin=(-80.0, -96.0, -72.0))
    for i, (name, sex, birth) in enumerate(PATIENTS):
        common = dict(patient_name=name, patient_id=f"SYN{i:04d}", sex=sex, birth_date=birth,
                      study_date=f"2024{1 + i:02d}{10 + i:02d}", accession=f"A{7300 + i}")
        write_series(root / "in" / f"{i}-ct", SeriesSpec(**common, **head, modality="CT", seed=10 * i,
                                                        study_description="CT HEAD W/O CONTRAST",
                                                        series_description="Head 3.0 mm"), pixels=head_phantom)
        if i % 2 == 0:
            write_series(root / "in" / f"{i}-mr", SeriesSpec(**common, rows=128, cols=128, slices=24,
                                                            slice_spacing=5.0, modality="MR", seed=10 * i + 1,
                                                            study_uid=f"1.2.826.0.1.3680043.9.7433.1.{i}",
                                                            study_description="MR BRAIN", body_part="BRAIN",
                                                            series_description="T1 AX"), pixels=head_phantom)
    gap = [(-80.0, -96.0, z) for z in (0.0, 3.0, 6.0, 12.0, 15.0, 18.0, 21.0)]
    write_series(root / "in" / "0-gap", SeriesSpec(
        patient_name=PATIENTS[0][0], patient_id="SYN0000", sex="F", birth_date=PATIENTS[0][2], seed=0,
        study_date="20240110", rows=192, cols=160, slices=7, positions=gap, series_number=3,
        series_description="Head (one slice missing)", series_uid="1.2.826.0.1.3680043.9.7433.2.3"),
        pixels=head_phantom)
    extra = root / "more"
    write_series(extra / "scan", SeriesSpec(patient_name="Fischer^Anna", patient_id="SYN0099", slices=12, seed=99,
                                            study_description="CT CHEST", series_description="Lung 1 mm"))
    (extra / "README.txt").write_text("not DICOM")
    (extra / "truncated.dcm").write_bytes((extra / "scan" / "IM00001.dcm").read_bytes()[:700])
    with DicomDatabase.open(root / "db") as db:
        import_paths(db, [root / "in"])
    make_broken(root / "broken")
    return root / "db"


def make_broken(folder: Path) -> None:
    """For the patcher: a series an anonymiser stripped of its UIDs and patient, dates written 2024.03.01."""
    from pydicom.uid import ExplicitVRLittleEndian

    from dicomtui.core.synth import series_datasets

    for i, ds in enumerate(series_datasets(SeriesSpec(slices=6, rows=32, cols=32, seed=7))):
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "PatientName", "PatientID"):
            delattr(ds, keyword)
        ds.StudyDate = ds.SeriesDate = "2024.03.01"
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        (folder / "Anon_042" / "CT_Head").mkdir(parents=True, exist_ok=True)
        ds.save_as(folder / "Anon_042" / "CT_Head" / f"IM{i:04d}", enforce_file_format=True)
    (folder / "notes.txt").write_text("not DICOM")


async def settle(app, pilot) -> None:
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def shoot(root: Path) -> list[str]:
    written = []
    port = _free_port()
    save_nodes(Nodes(LocalNode(port=port, bind="127.0.0.1"), {
        "self": RemoteNode("self", "DICOMTUI", "127.0.0.1", port, timeout=5),
        "pacs": RemoteNode("pacs", "ORTHANC", "pacs.example.org", 4242, retrieve="get"),
        "archive": RemoteNode("archive", "DCM4CHEE", "archive.example.org", 11112, tls=True)}),
        root / "nodes.toml")
    app = DicomTuiApp(root / "db", renderer="halfblock", settings_path=root / "config.toml",
                      nodes_path=root / "nodes.toml")

    def save(name: str, title: str) -> None:
        (HERE / f"{name}.svg").write_text(app.export_screenshot(title=f"dicomtui — {title}"), encoding="utf-8")
        written.append(name)

    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        save("browser", "browser")
        await pilot.press("i")
        app.screen.query_one("#import-path", Input).value = str(root / "more")
        await pilot.press("enter")
        await settle(app, pilot)
        save("import", "import")
        await pilot.press("escape")
        await pilot.press("3", "d")  # the series pane
        save("delete", "delete")
        await pilot.press("n", "m")
        await settle(app, pilot)
        save("metadata", "metadata")
        await pilot.press("escape")
        await pilot.press("end")
        await pilot.press("e")  # the series with a missing slice
        await settle(app, pilot)
        save("examine", "examine")
        await pilot.press("escape", "home", "enter")
        await settle(app, pilot)
        save("viewer", "viewer (axial)")
        await pilot.press("tab")
        save("viewer-coronal", "viewer (coronal)")
        await pilot.press("tab", "j", "j", "l")
        save("viewer-sagittal", "viewer (sagittal, pixel cursor)")
        await pilot.press("W")  # the shown volume saved as a new DICOM series: the form
        await pilot.pause()
        save("save-series", "save as a DICOM series")
        await pilot.press("escape")
        show_time_series(app)  # a 4D item: W offers all its volumes as one series, or the shown one
        await settle(app, pilot)
        await pilot.press("t", "W")
        await pilot.pause()
        save("save-series-4d", "save a 4D item as one DICOM series")
        await pilot.press("escape", "x")  # the 4D item closed: the CT again, as it was left
        await pilot.press("a")
        show_overlays(app)
        await settle(app, pilot)
        save("viewer-overlay", "viewer (segmentation outlines, dose wash, legend, what is under the cursor)")
        await pilot.press("g")
        save("viewer-overlay-filled", "viewer (segmentation filled, dose wash)")
        await pilot.press("escape", "o")
        save("databases", "databases")
        await pilot.press("escape", "comma")
        save("settings", "settings")
        await pilot.press("escape", "question_mark")
        save("help", "help")
        await pilot.press("escape", "n", "down", "down", "l", "c")  # the listener, and an echo to ourselves
        await settle(app, pilot)
        app.screen.refresh_listener()
        await pilot.pause()
        save("network", "network")
        await pilot.press("a")
        save("node-form", "add a node")
        await pilot.press("escape", "escape", "3", "s", "down", "down", "enter")
        await settle(app, pilot)
        save("send", "send")
        await pilot.press("escape")
        await settle(app, pilot)
        await pilot.press("3", "x")  # the series under the cursor, exported
        await settle(app, pilot)
        save("export", "export to a folder")
        app.screen.query_one("#deid-on", Switch).value = True  # issue 17: de-identified, with an option
        await settle(app, pilot)
        app.screen.query_one("#deid-options", SelectionList).select("modified-dates")
        await pilot.pause()
        save("export-deidentify", "export de-identified (PS3.15 Basic Profile)")
        app.screen.query_one("#deid-preview", Button).press()
        await pilot.pause()
        save("deid-preview", "what de-identification changes in one file")
        await pilot.press("escape")
        await pilot.press("escape", "2", "t")  # the tag editor of the study under the cursor
        await settle(app, pilot)
        app.screen.query_one("#tag-common-StudyDescription", Input).value = "CT HEAD (reviewed)"
        await pilot.press("ctrl+d")  # the dry-run diff
        await settle(app, pilot)
        save("tag-editor", "tag editor (dry run)")
        await pilot.press("escape")
        await settle(app, pilot)
        await pilot.press("i")  # the import screen, ctrl+r: the patcher on a broken folder
        app.screen.query_one("#import-path", Input).value = str(root / "broken")
        await pilot.press("ctrl+r")
        await pilot.pause()
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        save("patcher", "DICOM patcher")
    return written


def show_time_series(app) -> None:
    """Three time points on the loaded head CT's grid (the phantom + 20 t), labelled as the sequence loader labels
    a time series (``extra``: TemporalPositionIdentifier), handed to the app as a load ends: a 4D item."""
    from dicomtui.core.volume import Volume
    from dicomtui.tui.widgets.slice_view import ViewerItem

    ct = app.loaded[0].volumes[0]
    name = f"{app.loaded[0].name} (3 volumes over 3 time points)"
    volumes = [Volume(ct.array + 20 * t, ct.affine.copy(), name=name, modality=ct.modality,
                      instance_uids=ct.instance_uids, series_uid=ct.series_uid) for t in range(3)]
    for t, volume in enumerate(volumes):
        volume.extra = {"key": "TemporalPositionIdentifier", "value": t + 1, "unit": ""}
    app._loaded([ViewerItem(name, volumes)])


def show_overlays(app) -> None:
    """A label volume made from the loaded head CT (skull, ventricles), as a SEG loader gives it (referencing the
    CT's series), and a dose on its own 4 mm grid (a Gaussian of 60 Gy on the right of the brain), handed to the
    app as a load ends: drawn over the CT; the cursor on a ventricle."""
    from dicomtui.core.volume import Segment, Volume
    from dicomtui.tui.widgets.slice_view import SliceView, ViewerItem

    ct = app.loaded[0].volumes[0]
    labels = np.zeros(ct.array.shape, dtype=np.uint8)
    labels[ct.array >= 1000] = 1
    labels[ct.array == 5] = 2
    segments = (Segment(1, "Skull", (241, 214, 145), "Tissue", "Bone"),
                Segment(2, "Lateral ventricles", (88, 106, 215), "Anatomical Structure", "Lateral ventricle"))
    seg = Volume(labels, ct.affine.copy(), name="Segmentation", modality="SEG", segments=segments,
                 referenced_series_uid=ct.series_uid)
    grid = np.diag([4.0, 4.0, 4.0, 1.0])
    grid[:3, 3] = ct.affine[:3, 3]
    k, j, i = np.mgrid[0:36, 0:48, 0:40].astype(np.float32)
    centre = np.linalg.inv(grid) @ ct.affine @ [55, 110, ct.array.shape[0] // 2, 1]  # (i, j, k) of the CT
    gy = 60 * np.exp(-((i - centre[0]) ** 2 + (j - centre[1]) ** 2 + (k - centre[2]) ** 2) / (2 * 5.0 ** 2))
    dose = Volume(gy.astype(np.float32), grid, name="RT Dose", modality="RTDOSE", units="GY")
    app._loaded([ViewerItem("Segmentation", [seg]), ViewerItem("RT Dose", [dose])])
    view = app.screen.query_one(SliceView)
    rows, cols = np.nonzero(view.current_view().slice(view.index) == 5)
    view.cursor = (int(np.median(rows)), int(cols[np.argmin(abs(rows - np.median(rows)))]))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    root = Path(tempfile.gettempdir()) / "dicomtui-screenshots"  # a fixed path: it shows on screen
    shutil.rmtree(root, ignore_errors=True)
    try:
        make_database(root)
        names = asyncio.run(shoot(root))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("wrote " + ", ".join(f"screenshots/{n}.svg" for n in names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
