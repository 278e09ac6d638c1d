"""Examine: loadables and their warnings, with exact expectations; load: geometry, order, values, dtypes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from dicomtui.core.database import SCHEMA_VERSION, DicomDatabase
from dicomtui.core.examine import examine_series, load, plugin, scalar, select
from dicomtui.core.examine.stack import rescale
from dicomtui.core.indexer import import_paths
from dicomtui.core.synth import SeriesSpec, series_datasets, write_series

AXIAL = "1.0\\0.0\\0.0\\0.0\\1.0\\0.0"


def rows(n: int = 10, spacing: float = 2.0, **over) -> list[dict]:
    """Instance rows as the database stores them, for an axial stack at z = 0, spacing, 2×spacing…"""
    out = []
    for k in range(n):
        row = {"SOPInstanceUID": f"1.2.3.{k}", "SeriesInstanceUID": "1.2.3", "SeriesNumber": 7,
               "SeriesDescription": "Head", "InstanceNumber": k + 1, "has_pixels": 1, "NumberOfFrames": None,
               "ImagePositionPatient": f"0.0\\0.0\\{k * spacing}", "ImageOrientationPatient": AXIAL,
               "PixelSpacing": "0.5\\0.5", "Rows": 64, "Columns": 64, "AcquisitionNumber": 1,
               "ImageType": "ORIGINAL\\PRIMARY\\AXIAL", "FrameOfReferenceUID": "1.2.3.9"}
        row.update(over)
        out.append(row)
    return out


def only(loadables, name_part: str = ""):
    found = [item for item in loadables if name_part in item.name]
    assert len(found) == 1, [item.name for item in loadables]
    return found[0]


def test_a_clean_series_is_one_selected_loadable() -> None:
    loadables = scalar.examine(rows())
    select(loadables)
    assert len(loadables) == 1
    item = loadables[0]
    assert (item.name, item.confidence, item.warnings, item.selected) == ("7: Head", 0.5, [], True)


def test_slices_are_sorted_by_position_not_instance_number() -> None:
    data = rows(5)
    for row, number in zip(data, [3, 1, 5, 2, 4], strict=True):
        row["InstanceNumber"] = number
    data.reverse()
    ordered = scalar.examine(data)[0].instances
    assert [r["ImagePositionPatient"].split("\\")[2] for r in ordered] == ["0.0", "2.0", "4.0", "6.0", "8.0"]


def test_missing_slices_are_counted_and_located() -> None:
    data = [r for k, r in enumerate(rows(100, spacing=1.25)) if not 40 <= k <= 55]  # slices 41-56 removed
    item = scalar.examine(data)[0]
    assert item.warnings == [
        "16 missing slices between slice 40 and 41 (positions 48.75 and 70.00 mm along the normal; usual spacing "
        "1.25 mm)"]
    assert item.confidence == plugin.CONF_DOUBTFUL


def test_uneven_spacing_says_min_and_max() -> None:
    data = rows(6)
    data[3]["ImagePositionPatient"] = "0.0\\0.0\\6.3"
    item = scalar.examine(data)[0]
    # positions written with one decimal: steps are known to 0.1 mm, not 0.01
    assert item.warnings == ["slices are not equally spaced: spacing varies from 1.7 to 2.3 mm (tolerance 0.1 mm)"]


def test_spacing_within_tolerance_is_fine() -> None:
    data = rows(6)
    data[3]["ImagePositionPatient"] = "0.0\\0.0\\6.005"
    assert scalar.examine(data)[0].warnings == []


def test_gantry_tilt_gives_the_angle() -> None:
    tilt = math.radians(15)
    data = rows(10)
    for k, row in enumerate(data):
        row["ImagePositionPatient"] = f"0.0\\{k * 2.0 * math.tan(tilt):.6f}\\{k * 2.0}"
    item = scalar.examine(data)[0]
    assert item.warnings == ["gantry tilt or sheared geometry: slice positions move 15.00° away from the slice "
                             "normal; the volume is stored sheared (regularize to resample it)"]


@pytest.mark.parametrize("delta, groups", [(1e-7, 1), (1e-5, 2)])
def test_orientation_tolerance(delta: float, groups: int) -> None:
    data = rows(10)
    for row in data[5:]:
        row["ImageOrientationPatient"] = f"1.0\\{delta}\\0.0\\0.0\\1.0\\0.0"
    loadables = scalar.examine(data)
    subs = [item for item in loadables if "orientation" in item.name]
    assert len(subs) == (0 if groups == 1 else 2)
    mixed = [w for w in loadables[0].warnings if "mixed orientations" in w]
    assert len(mixed) == (0 if groups == 1 else 1)


def test_localizer_is_recognised_and_left_out() -> None:
    data = rows(20)
    scout = data[0]
    scout.update(ImageOrientationPatient="0.0\\1.0\\0.0\\0.0\\0.0\\-1.0", ImagePositionPatient="0.0\\-100.0\\100.0",
                 ImageType="ORIGINAL\\PRIMARY\\LOCALIZER")
    loadables = scalar.examine(data)
    select(loadables)
    without = only(loadables, "without the localizer")
    assert len(without.instances) == 19 and without.warnings == [] and without.selected
    assert without.confidence == plugin.CONF_PREFERRED
    assert loadables[0].confidence < 0.45 and not loadables[0].selected
    assert any("mixed orientations" in w for w in loadables[0].warnings)


def test_sub_series_by_acquisition_are_preferred_when_the_whole_is_doubtful() -> None:
    data = rows(10) + rows(10, AcquisitionNumber=2)
    for k, row in enumerate(data):
        row["SOPInstanceUID"] = f"1.2.3.{k}"
    loadables = scalar.examine(data)
    select(loadables)
    whole = loadables[0]
    assert whole.warnings == ["10 slices share a position with another slice: several volumes or repeated "
                              "acquisitions are mixed in this series"]
    subs = [item for item in loadables if "acquisition" in item.name]
    assert [len(s.instances) for s in subs] == [10, 10]
    assert all(s.selected and s.confidence == plugin.CONF_PREFERRED for s in subs) and not whole.selected


def test_other_warnings() -> None:
    data = rows(4)
    data[1]["Rows"] = 32
    data[2]["FrameOfReferenceUID"] = "1.2.3.10"
    data[3]["ImageOrientationPatient"] = None
    warnings = scalar.examine(data)[0].warnings
    assert warnings == [
        "mixed image sizes (64x32, 64x64): the images cannot be stacked into one volume",
        "2 different FrameOfReferenceUIDs: the images may not share one coordinate system",
        "missing geometry (ImageOrientationPatient) in 1 of 4 images: slices are stacked by InstanceNumber with "
        "1 mm spacing, positions are not trustworthy",
    ]


def test_a_series_without_pixels_is_listed_by_the_nonimage_plugin_and_never_selected() -> None:
    """Issue 11 item 8: the scalar plugin used to offer (and select) a no-pixels loadable that then failed."""
    from dicomtui.core.examine import nonimage

    data = rows(3, has_pixels=0)
    assert scalar.examine(data) == []
    (item,) = nonimage.examine(data)
    assert item.confidence == plugin.CONF_NO_PIXELS
    assert item.warnings == ["3 instances: an image without Pixel Data: no image to load"]
    select([item])
    assert not item.selected


def test_same_files_are_not_selected_twice() -> None:
    data = rows(6)
    loadables = scalar.examine(data) + scalar.examine(data)  # as if a second plugin offered the same
    select(loadables)
    assert [item.selected for item in loadables] == [True, False]


@pytest.mark.parametrize("slopes, intercepts, raw_dtype, expected", [
    ([1, 1], [-1024, -1024], np.uint16, np.int16),
    ([1, 1], [0, 0], np.uint16, np.uint8),
    ([1, 1], [0, 0], np.int16, np.uint8),
    ([1, 1], [-300, 0], np.int16, np.int16),
    ([1, 1], [-1024, 0], np.uint16, np.int16),
    ([0.5, 0.5], [0, 0], np.uint16, np.float32),
    ([1, 1], [0.5, 0.5], np.uint16, np.float32),
])
def test_rescale_picks_the_smallest_exact_type(slopes, intercepts, raw_dtype, expected) -> None:
    raw = np.array([[[0, 200]], [[3, 100]]], dtype=raw_dtype)
    want = raw.astype(np.float64) * np.array(slopes)[:, None, None] + np.array(intercepts)[:, None, None]
    out = rescale(raw, slopes, intercepts)  # may work in place
    assert out.dtype == expected
    assert np.array_equal(out.astype(np.float64), want)


def test_load_builds_the_volume_in_patient_space(tmp_path: Path) -> None:
    spec = SeriesSpec(slices=6, rows=20, cols=30, pixel_spacing=(0.8, 0.6), slice_spacing=3.0,
                      orientation=(0.0, 1.0, 0.0, 0.0, 0.0, -1.0), origin=(12.0, -40.0, 25.0))  # sagittal
    files = write_series(tmp_path / "in", spec)
    files[2].rename(tmp_path / "in" / "zzz.dcm")  # file order on disk must not matter
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [tmp_path / "in"])
        (item,) = examine_series(db, [db.series()[0]["id"]])
        (volume,) = load(db, item)
    assert volume.array.shape == (6, 20, 30) and volume.array.dtype == np.int16
    np.testing.assert_allclose(volume.spacing, (0.6, 0.8, 3.0))
    normal = np.cross([0, 1, 0], [0, 0, -1])
    np.testing.assert_allclose(volume.affine[:3, 0], [0, 0.6, 0])
    np.testing.assert_allclose(volume.affine[:3, 1], [0, 0, -0.8])
    np.testing.assert_allclose(volume.affine[:3, 2], normal * 3.0)
    np.testing.assert_allclose(volume.origin, (12.0, -40.0, 25.0))
    # synth encodes the slice index in the values: slice k holds 1000 + 10 k in the middle, minus 1024 (rescale)
    assert [int(volume.array[k, 10, 15]) for k in range(6)] == [1000 + 10 * k - 1024 for k in range(6)]
    assert volume.windows[0].name == "DICOM 1" and volume.windows[0].center == 40.0
    assert [w.name for w in volume.windows[1:4]] == ["brain", "subdural", "stroke"]


def test_direct_read_equals_pydicom(tmp_path: Path) -> None:
    """The Pixel Data offset path and pydicom's decoding agree, including BitsStored < BitsAllocated masking."""
    import pydicom

    from dicomtui.core.pixels import _read_direct, _read_pydicom

    spec = SeriesSpec(slices=1, rows=8, cols=8)
    ds = series_datasets(spec)[0]
    values = (np.arange(64, dtype=np.int16).reshape(8, 8) - 20)
    ds.BitsStored, ds.HighBit = 12, 11
    ds.PixelData = (values.astype(np.uint16) | 0xF000 * (values >= 0)).astype("<u2").tobytes()  # junk high bits
    ds.save_as(tmp_path / "x.dcm", enforce_file_format=True)
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [tmp_path / "x.dcm"])
        inst = db.instances()[0]
    direct = np.empty((8, 8), dtype=np.int16)
    assert _read_direct(tmp_path / "x.dcm", inst, direct)
    assert np.array_equal(direct, _read_pydicom(tmp_path / "x.dcm"))
    assert np.array_equal(direct, pydicom.dcmread(tmp_path / "x.dcm").pixel_array)


def test_repeated_positions_become_a_sequence() -> None:
    from dicomtui.core.examine import sequence

    data = []
    for t in (1, 2, 3):
        for row in rows(4, TemporalPositionIdentifier=t):
            row["SOPInstanceUID"] = f"1.2.{t}.{row['SOPInstanceUID']}"
            data.append(row)
    data.reverse()
    loadables = scalar.examine(data) + sequence.examine(data)
    select(loadables)
    seq = only(loadables, "volumes")
    assert seq.name == "7: Head (3 volumes over 3 time points)" and seq.selected and seq.warnings == []
    volumes = [part.instances for part in seq.payload.parts]
    assert [[r["TemporalPositionIdentifier"] for r in v] for v in volumes] == [[1] * 4, [2] * 4, [3] * 4]
    assert [r["ImagePositionPatient"] for r in volumes[0]] == [f"0.0\\0.0\\{2.0 * k}" for k in range(4)]
    assert not loadables[0].selected


def test_unequal_repeats_are_not_a_sequence() -> None:
    from dicomtui.core.examine import sequence

    data = rows(4) + rows(3)
    assert sequence.examine(data) == []


def test_regularize_fills_a_gap_and_straightens_a_tilt(tmp_path: Path) -> None:
    tilt = math.radians(10)
    keep = [k for k in range(12) if k not in (5, 6)]  # two missing slices
    positions = [(0.0, k * 2.0 * math.tan(tilt), k * 2.0) for k in keep]
    write_series(tmp_path / "in", SeriesSpec(slices=len(keep), rows=16, cols=16, positions=positions,
                                             pixel_spacing=(1.0, 1.0)))
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [tmp_path / "in"])
        (item,) = examine_series(db, [db.series()[0]["id"]])
        assert any("missing slices" in w for w in item.warnings) and any("tilt" in w for w in item.warnings)
        (acquired,) = load(db, item)
        (regular,) = load(db, item, regularize=True)
    assert acquired.array.shape[0] == 10 and not acquired.resampled
    assert regular.resampled and regular.array.shape == (12, 16, 16)
    np.testing.assert_allclose(regular.affine[:3, :3], np.diag([1.0, 1.0, 2.0]), atol=1e-9)  # orthogonal
    np.testing.assert_allclose(regular.origin, positions[0], atol=1e-9)
    assert "resampled onto a regular grid of 12 slices 2 mm apart" in regular.warnings[-1]
    # synth slice values are 1000 + 10 × (slice index in the file set) - 1024 inside the sphere: a filled
    # slice lies between its neighbours'; an acquired one keeps its value (centre voxel, shift undone)
    centre = [int(regular.array[m, 8, 8]) for m in range(12)]
    assert centre[4] == 1000 + 10 * 4 - 1024 and centre[7] == 1000 + 10 * 5 - 1024
    assert centre[4] < centre[5] < centre[6] < centre[7]


def test_enhanced_multiframe_time_points_are_loadables(tmp_path: Path) -> None:
    from dicomtui.core.synth import write_enhanced

    write_enhanced(tmp_path / "in" / "e.dcm", SeriesSpec(slices=5, rows=12, cols=10, modality="MR",
                                                          slice_spacing=3.0), time_points=2)
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [tmp_path / "in"])
        loadables = examine_series(db, [db.series()[0]["id"]])
        # one 4D reading, preferred, and each time point as an alternative (tests/test_multiframe_4d.py)
        assert [(item.plugin, item.name, len(item.instances), item.selected) for item in loadables] == [
            ("multiframe", "1: Axial (2 volumes over 2 time points)", 10, True),
            ("multiframe", "1: Axial (time point 1)", 5, False), ("multiframe", "1: Axial (time point 2)", 5, False)]
        volumes = [volume for item in loadables[1:] for volume in load(db, item)]
        assert [v.array.tolist() for v in load(db, loadables[0])] == [v.array.tolist() for v in volumes]
    for t, volume in enumerate(volumes):
        assert volume.array.shape == (5, 12, 10)
        np.testing.assert_allclose(volume.spacing, (0.5, 0.5, 3.0))
        # synth: 1000 + 10 k inside the phantom, plus 100 per time point (no rescale in this file)
        assert [int(volume.array[k, 6, 5]) for k in range(5)] == [1000 + 10 * k + 100 * t for k in range(5)]


def test_migration_from_schema_1(tmp_path: Path) -> None:
    """A version-1 database (no per-frame geometry column) opens, is migrated, and imports multi-frames."""
    with DicomDatabase.open(tmp_path / "db") as db:
        db.conn.execute("ALTER TABLE instances DROP COLUMN frames")
        db.conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with DicomDatabase.open(tmp_path / "db") as db:
        assert db.schema_version == SCHEMA_VERSION
        write_series(tmp_path / "in", SeriesSpec(slices=2))
        assert import_paths(db, [tmp_path / "in"]).instances_added == 2


@pytest.mark.parametrize("name", ["JPEG2000.dcm", "693_J2KI.dcm", "JPGExtended.dcm", "MR_small_jpeg_ls_lossless.dcm",
                                  "MR_small_RLE.dcm", "MR_small_bigendian.dcm"])
def test_compressed_and_odd_files_decode(name: str, tmp_path: Path) -> None:
    """pydicom's own test files in every codec we promise: the decoders are installed and used."""
    import pydicom
    from pydicom.data import get_testdata_file

    from dicomtui.core.pixels import read_slice

    path = get_testdata_file(name, download=False)
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [path])
        inst = db.instances()[0]
    expected = pydicom.dcmread(path).pixel_array
    assert np.array_equal(read_slice(Path(path), inst), expected)


# ---- cancel and the use case (examine → choose → load) ---------------------------------------------------------

def _imported(tmp_path: Path, spec: SeriesSpec) -> DicomDatabase:
    write_series(tmp_path / "in", spec)
    db = DicomDatabase.open(tmp_path / "db")
    import_paths(db, [tmp_path / "in"])
    return db


def test_a_cancelled_load_raises_between_slices(tmp_path: Path) -> None:
    import threading

    from dicomtui.core.errors import LoadError

    with _imported(tmp_path, SeriesSpec(slices=6, rows=8, cols=8)) as db:
        (item,) = examine_series(db, [db.series()[0]["id"]])
        cancel = threading.Event()
        seen: list[int] = []

        def progress(done: int, total: int) -> None:
            seen.append(done)
            if done == 2:
                cancel.set()

        with pytest.raises(LoadError, match=r"^1: Axial: loading cancelled after 3 of 6 slices$"):
            load(db, item, progress, cancel=cancel)
        assert seen == [1, 2]
        with pytest.raises(LoadError, match="cancelled after 0 of 6 slices"):
            load(db, item, cancel=cancel)  # set before the start: nothing is read
        cancel.clear()
        (volume,) = load(db, item, cancel=cancel)
        assert volume.array.shape == (6, 8, 8)


def test_a_cancelled_sequence_or_multiframe_load_raises(tmp_path: Path) -> None:
    import threading

    from dicomtui.core.errors import LoadError
    from dicomtui.core.synth import write_enhanced

    write_enhanced(tmp_path / "in" / "e.dcm", SeriesSpec(slices=4, rows=8, cols=8, modality="MR"))
    cancel = threading.Event()
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [tmp_path / "in"])
        (item,) = examine_series(db, [db.series()[0]["id"]])
        assert item.plugin == "multiframe"
        with pytest.raises(LoadError, match="cancelled after 2 of 4 slices"):
            load(db, item, lambda done, total: cancel.set() if done == 1 else None, cancel=cancel)


def test_load_returns_one_volume_per_sequence_part_with_progress_over_all(tmp_path: Path) -> None:
    positions = [(0.0, 0.0, 2.0 * k) for k in range(3)] * 2
    files = write_series(tmp_path / "in", SeriesSpec(slices=6, rows=8, cols=8, positions=positions))
    import pydicom

    for k, path in enumerate(files):
        ds = pydicom.dcmread(path)
        ds.TemporalPositionIdentifier = 1 + k // 3
        ds.save_as(path)
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [tmp_path / "in"])
        seq = only(examine_series(db, [db.series()[0]["id"]]), "volumes")
        seen: list[tuple[int, int]] = []
        volumes = load(db, seq, lambda done, total: seen.append((done, total)))
    assert [v.extra["value"] for v in volumes] == [1, 2] and all(v.array.shape == (3, 8, 8) for v in volumes)
    assert seen == [(n, 6) for n in range(1, 7)]


def test_examine_and_load_takes_the_default_selection(tmp_path: Path) -> None:
    from dicomtui.core.examine import LoadProgress, examine_and_load

    with _imported(tmp_path, SeriesSpec(slices=4, rows=8, cols=8)) as db:
        seen: list[LoadProgress] = []
        report = examine_and_load(db, [db.series()[0]["id"]], progress=seen.append)
    assert [r.loadable.name for r in report.loaded] == ["1: Axial"] and report.refused == []
    (volume,) = report.volumes
    assert volume.array.shape == (4, 8, 8)
    assert seen[-1] == LoadProgress(1, 1, "1: Axial", 4, 4) and seen[-1].text() == "loading 1/1 1: Axial: 4/4"
    assert report.summary() == "loaded 1 volume (1: Axial)"


def test_examine_and_load_strict_refuses_a_loadable_with_warnings(tmp_path: Path) -> None:
    from dicomtui.core.examine import examine_and_load

    files = write_series(tmp_path / "in", SeriesSpec(slices=8, rows=8, cols=8))
    for path in files[3:5]:
        path.unlink()
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [tmp_path / "in"])
        sid = db.series()[0]["id"]
        report = examine_and_load(db, [sid], strict=True)
        assert report.loaded == [] and [item.name for item in report.refused] == ["1: Axial"]
        assert report.summary() == "not loaded (strict and the loadable has warnings): 1: Axial"
        assert report.chosen[0].warnings[0].startswith("2 missing slices between slice 3 and 4")
        assert len(examine_and_load(db, [sid]).volumes) == 1  # not strict: loaded, warnings and all


def test_choose_by_number_or_default(tmp_path: Path) -> None:
    from dicomtui.core.errors import LoadError
    from dicomtui.core.examine import choose

    data = rows(10) + rows(10, AcquisitionNumber=2)
    for k, row in enumerate(data):
        row["SOPInstanceUID"] = f"1.2.3.{k}"
    loadables = scalar.examine(data)
    select(loadables)
    assert [item.name for item in choose(loadables)] == ["7: Head (acquisition 1)", "7: Head (acquisition 2)"]
    assert [item.name for item in choose(loadables, first_only=True)] == ["7: Head (acquisition 1)"]
    assert choose(loadables, 1) == [loadables[0]]
    with pytest.raises(LoadError, match=r"^there is no loadable 4: the series offers 3 \(1 to 3\)$"):
        choose(loadables, 4)


def test_every_confidence_a_plugin_gives_is_explained() -> None:
    """The examine screen explains the scale: each CONF_ step of plugin.py has its sentence."""
    from dicomtui.core.examine import plugin
    from dicomtui.core.examine.confidence import MEANINGS

    steps = {value for name, value in vars(plugin).items() if name.startswith("CONF_")}
    assert steps == {c for c, _, _ in MEANINGS}


def test_referenced_grid_loads_the_default_volume_of_a_series_by_uid(db, series_folder: Path) -> None:
    """The grid a derived object (SEG, RTSTRUCT, RT Dose) refers to: the series' default volume, by UID, once."""
    from dicomtui.core.examine import referenced_grid

    import_paths(db, [series_folder])
    uid = db.conn.execute("SELECT SeriesInstanceUID FROM series WHERE SeriesNumber = 1").fetchone()[0]
    grid = referenced_grid(db)
    volume = grid(uid)
    assert volume is not None and volume.array.shape[0] == 10 and volume.series_uid == uid
    assert grid(uid) is volume  # cached
    assert grid("1.2.3.4.5.6.7.8.9") is None  # not in the database
