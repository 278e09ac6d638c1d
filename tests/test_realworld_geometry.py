"""Issue 11, items 1-6: kinds of real-world series whose geometry loaded wrongly without a word — Siemens mosaics,
jittered stacks, oblique cosines written to 6 decimals, functional groups on one-frame objects, pixel size
without position, enhanced multi-frame files with several echoes. Each on a generated file with its right value
(PS3.3 C.7.6.2.1.1 for positions and cosines, C.7.6.16/17 for functional groups and dimensions)."""

from __future__ import annotations

import math
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread

from dicomtui.core.csa import encode_csa, read_csa
from dicomtui.core.database import SCHEMA_VERSION, DicomDatabase
from dicomtui.core.examine import examine_series, load
from dicomtui.core.examine.geometry import check_stack, orientation, position_rounding
from dicomtui.core.indexer import import_paths
from dicomtui.core.synth import SeriesSpec, default_pixels, write_enhanced, write_mosaic, write_series

NIBABEL_DATA = Path(__import__("nibabel").__file__).parent / "nicom" / "tests" / "data"


def oblique(decimals: int = 6) -> tuple[float, ...]:
    """Double-oblique cosines rounded to ``decimals``, as scanners write them (so not exactly unit length)."""
    row = np.array([math.cos(0.4), math.sin(0.4), 0.0])
    col = np.array([-math.sin(0.4) * math.cos(0.5), math.cos(0.4) * math.cos(0.5), math.sin(0.5)])
    return tuple(float(v) for v in np.round(np.r_[row, col], decimals))


def examine_folder(tmp_path: Path, folder: Path):
    db = DicomDatabase.open(tmp_path / "db")
    report = import_paths(db, [folder])
    assert not report.rejected, report.summary()
    return db, examine_series(db, [s["id"] for s in db.series()])


def selected(loadables):
    return [item for item in loadables if item.selected]


# ---- 1. Siemens mosaics -----------------------------------------------------------------------------------------

def test_csa_reader_reads_what_it_writes_and_refuses_garbage() -> None:
    data = encode_csa({"NumberOfImagesInMosaic": ("US", [20]), "SliceNormalVector": ("FD", [0.0, 0.1, 0.995]),
                       "ImaCoilString": ("LO", ["HEA;HEP"])})
    assert read_csa(data) == {"NumberOfImagesInMosaic": [20], "SliceNormalVector": [0.0, 0.1, 0.995],
                              "ImaCoilString": ["HEA;HEP"]}
    with pytest.raises(ValueError):
        read_csa(b"SV10\x04\x03\x02\x01" + b"\xff" * 8)
    with pytest.raises(ValueError):
        read_csa(data[:200])


@pytest.mark.parametrize("name", ["siemens_dwi_1000.dcm.gz", "csa_slice_norm.dcm", "0.dcm"])
def test_csa_reader_agrees_with_nibabel(name: str) -> None:
    import gzip
    import io

    with warnings.catch_warnings():  # "The DICOM readers are highly experimental": we use its CSA reader only
        warnings.simplefilter("ignore")
        from nibabel.nicom import csareader

    from dicomtui.core.csa import csa_image_header

    path = NIBABEL_DATA / name
    if not path.exists():
        pytest.skip(f"nibabel's test file {name} is not installed")
    raw = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
    ds = dcmread(io.BytesIO(raw))
    ours = csa_image_header(ds)
    reference = csareader.get_csa_header(ds, "image")["tags"]
    assert ours and {k: v["items"] for k, v in reference.items()} == ours


def test_a_mosaic_is_unpacked_into_its_tiles_at_their_positions(tmp_path: Path) -> None:
    spec = SeriesSpec(slices=5, rows=6, cols=8, pixel_spacing=(1.5, 2.0), slice_spacing=3.0,
                      orientation=oblique(), origin=(10.0, -20.0, 30.0), modality="MR")
    (path,) = write_mosaic(tmp_path / "in", spec)
    assert dcmread(path).Rows == 18 and dcmread(path).Columns == 24  # 3 × 3 tiles, the last 4 blank
    db, loadables = examine_folder(tmp_path, tmp_path / "in")
    with db:
        (item,) = selected(loadables)
        assert item.plugin == "mosaic" and item.warnings == [] and len(item.instances) == 5
        assert not [i for i in loadables if i.plugin == "scalar"]  # never offered as a 2D picture
        (volume,) = load(db, item)
    assert volume.array.shape == (5, 6, 8)
    for k in range(5):
        assert np.array_equal(volume.array[k], default_pixels(k, spec))
    cosines = orientation("\\".join(map(str, spec.orientation)))
    assert cosines is not None
    row, col = cosines[:3], cosines[3:]
    np.testing.assert_allclose(volume.origin, spec.origin, atol=1e-5)  # the first tile, not the mosaic corner
    np.testing.assert_allclose(volume.affine[:3, 0], row * 2.0, atol=1e-6)
    np.testing.assert_allclose(volume.affine[:3, 1], col * 1.5, atol=1e-6)
    np.testing.assert_allclose(volume.affine[:3, 2], np.cross(row, col) * 3.0, atol=1e-5)


def test_a_series_of_mosaics_is_4d_with_its_b_values(tmp_path: Path) -> None:
    spec = SeriesSpec(slices=4, rows=6, cols=6, slice_spacing=2.5, modality="MR")
    write_mosaic(tmp_path / "in", spec, volumes=3, bvalues=[0, 1000, 1000],
                 gradients=[[0, 0, 0], [1, 0, 0], [0, 1, 0]])
    db, loadables = examine_folder(tmp_path, tmp_path / "in")
    with db:
        (item,) = selected(loadables)
        assert item.plugin == "mosaic" and "3 volumes of 4 slices" in item.name
        volumes = load(db, item)
    assert [v.array.shape for v in volumes] == [(4, 6, 6)] * 3
    assert [v.extra["bvalue"] for v in volumes] == [0.0, 1000.0, 1000.0]
    np.testing.assert_allclose(volumes[2].extra["gradient"], [0, 1, 0])
    assert [int(v.array[1, 3, 3]) for v in volumes] == [1010, 1110, 1210]  # slice 1 of volumes 0, 1, 2


def test_a_mosaic_without_csa_header_says_so(tmp_path: Path) -> None:
    write_mosaic(tmp_path / "in", SeriesSpec(slices=4, rows=6, cols=6, modality="MR"), csa=False)
    db, loadables = examine_folder(tmp_path, tmp_path / "in")
    with db:
        (item,) = loadables
    assert item.plugin == "scalar"
    assert any("Siemens mosaics without NumberOfImagesInMosaic" in w for w in item.warnings)


# ---- 2 and 3. Jittered stacks, oblique rounding ------------------------------------------------------------------

def jittered(tmp_path: Path) -> tuple[Path, list[np.ndarray]]:
    """20 oblique slices ~7 mm apart whose positions are written on a 0.1 mm grid, each slice its own
    AcquisitionNumber (what the issue's MR series does)."""
    cosines = oblique()
    row, col = np.array(cosines[:3]), np.array(cosines[3:])
    normal = np.cross(row, col) / np.linalg.norm(np.cross(row, col))
    positions = [np.round(np.array([-80.0, 12.0, 40.0]) + k * 7.0 * normal, 1) for k in range(20)]
    spec = SeriesSpec(slices=20, rows=8, cols=8, orientation=cosines, positions=positions, modality="MR")
    files = write_series(tmp_path / "in", spec)
    for k, path in enumerate(files):
        ds = dcmread(path)
        ds.AcquisitionNumber = k + 1
        ds.ImagePositionPatient = [f"{v:.1f}" for v in positions[k]]
        ds.save_as(path)
    return tmp_path / "in", positions


def test_a_jittered_stack_is_one_clean_volume_ending_on_its_last_slice(tmp_path: Path) -> None:
    folder, positions = jittered(tmp_path)
    db, loadables = examine_folder(tmp_path, folder)
    with db:
        assert len(loadables) == 1, [i.to_dict() for i in loadables]  # no 20 one-slice "acquisitions"
        (item,) = loadables
        assert item.selected and item.warnings == []
        geometry = item.payload.geometry
        steps = np.diff(geometry.distances)
        assert steps.min() < 6.97 and steps.max() > 7.05  # the jitter is really there
        (volume,) = load(db, item)
        (again,) = load(db, item, regularize=True)
    assert volume.array.shape == (20, 8, 8)
    last = volume.affine @ np.array([0, 0, 19, 1])
    np.testing.assert_allclose(last[:3], positions[-1], atol=1e-9)  # (last - first) / 19, not the median step
    assert not again.resampled  # regular within the DS precision: nothing to resample, and it says so
    assert again.warnings == ["not resampled: the slices are regular within 0.16 mm (the precision of their written "
                              "positions) and not tilted"]


def test_position_rounding_follows_the_written_decimals() -> None:
    assert position_rounding(["-80.1\\12\\40.0"]) == pytest.approx(0.05)
    assert position_rounding(["-75.097641\\1\\2", "3\\4\\5"]) == pytest.approx(5e-7)
    assert position_rounding(["1e-016\\0\\1"]) == pytest.approx(5e-17)
    assert position_rounding(["0\\0\\7", "-12\\3\\14"]) == 0.0  # whole numbers: taken as exact


def test_oblique_cosines_written_to_6_decimals_are_not_a_tilt() -> None:
    cosines = oblique(6)
    raw = np.array(cosines)
    assert abs(np.linalg.norm(np.cross(raw[:3], raw[3:])) - 1) > 1e-8  # the written cosines are not unit
    rows = []
    exact_row, exact_col = np.array(oblique(15)[:3]), np.array(oblique(15)[3:])
    normal = np.cross(exact_row, exact_col)
    for k in range(40):
        position = np.array([5.0, -3.0, 2.0]) + k * 2.5 * normal
        rows.append({"SOPInstanceUID": f"1.2.{k}", "InstanceNumber": k + 1, "Rows": 8, "Columns": 8,
                     "ImagePositionPatient": "\\".join(f"{v:.6f}" for v in position),
                     "ImageOrientationPatient": "\\".join(str(v) for v in cosines), "PixelSpacing": "1\\1"})
    check = check_stack(rows)
    assert check.warnings == []
    geometry = check.geometry
    assert geometry is not None and geometry.tilt_deg == 0.0 and not geometry.irregular
    assert np.linalg.norm(geometry.normal) == pytest.approx(1.0, abs=1e-15)
    assert geometry.spacing == pytest.approx(2.5, abs=1e-5)


def test_a_real_tilt_is_still_a_tilt() -> None:
    rows = [{"SOPInstanceUID": f"1.2.{k}", "InstanceNumber": k + 1, "Rows": 8, "Columns": 8,
             "ImagePositionPatient": f"0\\{k * 2.0 * math.tan(math.radians(0.5)):.6f}\\{k * 2.0:.6f}",
             "ImageOrientationPatient": "1\\0\\0\\0\\1\\0", "PixelSpacing": "1\\1"} for k in range(30)]
    geometry = check_stack(rows).geometry
    assert geometry is not None and geometry.tilt_deg == pytest.approx(0.5, abs=1e-3)


# ---- 4. Functional groups on one-frame objects --------------------------------------------------------------------

def test_a_one_frame_enhanced_object_keeps_its_functional_group_geometry(tmp_path: Path) -> None:
    spec = SeriesSpec(slices=1, rows=8, cols=10, pixel_spacing=(0.7, 0.9), origin=(3.0, 4.0, 5.0), modality="MR")
    write_enhanced(tmp_path / "in" / "one.dcm", spec)
    db, loadables = examine_folder(tmp_path, tmp_path / "in")
    with db:
        (item,) = selected(loadables)
        assert item.warnings == []
        (volume,) = load(db, item)
    np.testing.assert_allclose(volume.origin, [3.0, 4.0, 5.0])
    np.testing.assert_allclose(np.diag(volume.affine)[:2], [0.9, 0.7])


# ---- 5. Pixel size without position -------------------------------------------------------------------------------

@pytest.mark.parametrize("keyword", ["PixelSpacing", "ImagerPixelSpacing"])
def test_a_radiograph_without_position_keeps_its_pixel_size(tmp_path: Path, keyword: str) -> None:
    (path,) = write_series(tmp_path / "in", SeriesSpec(slices=1, rows=30, cols=20, modality="CT"))
    ds = dcmread(path)
    del ds.ImagePositionPatient, ds.ImageOrientationPatient, ds.PixelSpacing
    ds.Modality = "DX"
    setattr(ds, keyword, [0.143, 0.139])
    ds.save_as(path)
    db, loadables = examine_folder(tmp_path, tmp_path / "in")
    with db:
        (item,) = loadables
        (volume,) = load(db, item)
    np.testing.assert_allclose(np.diag(volume.affine)[:2], [0.139, 0.143])  # a 30 × 20 picture of ~4 × 3 mm
    np.testing.assert_allclose(volume.origin, [0, 0, 0])
    (warning,) = item.warnings
    assert "the place is unknown" in warning and "0.139 x 0.143 mm" in warning
    assert ("at the detector" in warning) == (keyword == "ImagerPixelSpacing")


def test_frames_without_position_take_the_spacing_between_slices(tmp_path: Path) -> None:
    path = write_enhanced(tmp_path / "in" / "nm.dcm", SeriesSpec(slices=3, rows=8, cols=8, pixel_spacing=(4.0, 4.0),
                                                                  modality="MR"))
    ds = dcmread(path)
    for item in ds.PerFrameFunctionalGroupsSequence:
        del item.PlanePositionSequence
    ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].SpacingBetweenSlices = 4.5
    ds.save_as(path)
    db, loadables = examine_folder(tmp_path, tmp_path / "in")
    with db:
        (item,) = loadables
        (volume,) = load(db, item)
    np.testing.assert_allclose(np.diag(volume.affine)[:3], [4.0, 4.0, 4.5])


# ---- 6. Enhanced multi-frame: every declared dimension --------------------------------------------------------------

def test_two_echoes_are_two_volumes_at_the_true_spacing(tmp_path: Path) -> None:
    spec = SeriesSpec(slices=4, rows=8, cols=8, slice_spacing=3.0, modality="MR")
    write_enhanced(tmp_path / "in" / "me.dcm", spec, echoes=[10.0, 25.0])
    db, loadables = examine_folder(tmp_path, tmp_path / "in")
    with db:
        chosen = selected(loadables)
        # one 4D reading of both echoes (the per-echo loadables are its alternatives: tests/test_multiframe_4d.py)
        assert [(i.name, len(i.instances), i.warnings) for i in chosen] == [
            ("1: Axial (2 volumes over 2 echo times)", 8, [])]
        volumes = [v for item in chosen for v in load(db, item)]
    assert [(v.extra["key"], v.extra["value"]) for v in volumes] == [("EchoTime", 10.0), ("EchoTime", 25.0)]
    for e, volume in enumerate(volumes):
        assert volume.array.shape == (4, 8, 8) and volume.affine[2, 2] == pytest.approx(3.0)
        assert [int(volume.array[k, 4, 4]) for k in range(4)] == [1000 + 10 * k + 1000 * e for k in range(4)]


def test_repeated_positions_with_nothing_to_tell_them_apart_are_never_one_stack(tmp_path: Path) -> None:
    spec = SeriesSpec(slices=3, rows=8, cols=8, slice_spacing=2.0, modality="MR")
    path = write_enhanced(tmp_path / "in" / "rep.dcm", spec, echoes=[10.0, 10.0])  # same echo twice
    ds = dcmread(path)
    for item in ds.PerFrameFunctionalGroupsSequence:
        del item.MREchoSequence
    ds.save_as(path)
    db, loadables = examine_folder(tmp_path, tmp_path / "in")
    with db:
        assert sorted(len(i.instances) for i in loadables) == [3, 3]
        assert all("repeat" in i.name for i in loadables)
        for item in loadables:
            assert item.payload.geometry.spacing == pytest.approx(2.0)


def test_one_image_per_acquisition_number_is_not_a_split(tmp_path: Path) -> None:
    files = write_series(tmp_path / "in", replace(SeriesSpec(slices=5, rows=8, cols=8), modality="MR"))
    for k, path in enumerate(files):
        ds = dcmread(path)
        ds.AcquisitionNumber = k + 1
        ds.save_as(path)
    db, loadables = examine_folder(tmp_path, tmp_path / "in")
    with db:
        assert [(i.plugin, len(i.instances), i.selected) for i in loadables] == [("scalar", 5, True)]


def test_load_regularize_says_what_it_resampled_and_when_it_did_not(tmp_path: Path) -> None:
    import json

    from tests.test_cli import run

    gap = write_series(tmp_path / "gap", SeriesSpec(slices=8, rows=8, cols=8, series_number=2))
    gap[3].unlink()
    folder, _ = jittered(tmp_path)
    db = str(tmp_path / "clidb")
    run("--db", db, "import", str(tmp_path / "gap"), str(folder))
    uids = {s["SeriesNumber"]: s["SeriesInstanceUID"] for s in json.loads(run("--db", db, "ls", "series",
                                                                              "--json").stdout)}
    out = run("--db", db, "load", uids[2], "-o", str(tmp_path / "g.nii"), "--regularize")
    assert out.returncode == 0 and ("warning: resampled onto a regular grid of 8 slices 2 mm apart along the slice "
                                    "normal (from 7 acquired slices: steps 2 to 4 mm") in out.stderr
    out = run("--db", db, "load", uids[1], "-o", str(tmp_path / "j.nii"), "--regularize")
    assert out.returncode == 0 and "warning: not resampled: the slices are regular within 0.16 mm" in out.stderr


def test_single_frame_repeats_with_nothing_to_tell_them_apart_are_offered_apart() -> None:
    from dicomtui.core.examine import scalar, select

    data = [{"SOPInstanceUID": f"1.2.{n}", "InstanceNumber": n + 1, "Rows": 8, "Columns": 8, "has_pixels": 1,
             "ImagePositionPatient": f"0\\0\\{2.0 * (n % 5) if n < 10 else 2.0 * (n % 3)}",
             "ImageOrientationPatient": "1\\0\\0\\0\\1\\0", "PixelSpacing": "1\\1"} for n in range(13)]
    loadables = scalar.examine(data)  # 5 positions twice, then 3 of them again: not a clean 4D series
    select(loadables)
    whole = loadables[0]
    assert not whole.selected and any("share a position" in w for w in whole.warnings)
    repeats = [item for item in loadables if "repeat" in item.name]
    assert [len(r.instances) for r in repeats] == [5, 5, 3]
    assert all(r.selected and not r.warnings for r in repeats)  # each repetition is a clean stack of its own


def test_mosaics_of_two_kinds_are_also_offered_apart(tmp_path: Path) -> None:
    write_mosaic(tmp_path / "in", SeriesSpec(slices=4, rows=6, cols=6, modality="MR"), volumes=2)
    small = write_mosaic(tmp_path / "other", SeriesSpec(slices=9, rows=4, cols=4, modality="MR", seed=3))
    ds = dcmread(small[0])  # the same series, another kind of mosaic (a field map beside the fMRI, say)
    ds.SeriesInstanceUID = dcmread(tmp_path / "in" / "MOSAIC001.dcm").SeriesInstanceUID
    ds.save_as(tmp_path / "in" / "other.dcm")
    db, loadables = examine_folder(tmp_path, tmp_path / "in")
    with db:
        whole, *kinds = loadables
        assert not whole.selected and "of 2 kinds" in whole.warnings[-1]
        assert [(len(k.instances), k.selected, k.warnings) for k in kinds] == [(8, True, []), (9, True, [])]
        assert [v.array.shape for k in kinds for v in load(db, k)] == [(4, 6, 6), (4, 6, 6), (9, 4, 4)]


def test_mosaic_tiles_running_against_row_cross_column_follow_the_csa_slice_normal(tmp_path: Path) -> None:
    spec = SeriesSpec(slices=5, rows=6, cols=6, slice_spacing=2.0, modality="MR", origin=(0.0, 0.0, 50.0))
    write_mosaic(tmp_path / "in", spec, descending=True)  # tile k at z = 50 - 2k
    db, loadables = examine_folder(tmp_path, tmp_path / "in")
    with db:
        (item,) = selected(loadables)
        (volume,) = load(db, item)
    for k in range(5):  # stacked along row × column (+z): the last tile first
        assert np.array_equal(volume.array[k], default_pixels(4 - k, spec))
        np.testing.assert_allclose((volume.affine @ np.array([0, 0, k, 1.0]))[:3], [0.0, 0.0, 42.0 + 2 * k],
                                   atol=1e-6)


def test_a_database_of_schema_2_gets_the_new_frame_geometry_on_upgrade(tmp_path: Path) -> None:
    """Files imported before schema 3 hold no mosaic tiles and no declared dimensions, and a re-import skips them
    as unchanged: the upgrade reads them once, so a mosaic and a two-echo file load right in an old database."""
    spec = SeriesSpec(slices=4, rows=6, cols=8, slice_spacing=3.0, modality="MR")
    write_mosaic(tmp_path / "in" / "mosaic", spec)
    write_enhanced(tmp_path / "in" / "me.dcm", replace(spec, series_number=2), echoes=[10.0, 25.0])
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [tmp_path / "in"])
        db.conn.execute("UPDATE instances SET frames = NULL")  # as a version-1 import left them
        db.conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    with DicomDatabase.open(tmp_path / "db") as db:
        assert db.schema_version == SCHEMA_VERSION  # every migration ran (3: frames, 4: refs)
        loadables = examine_series(db, [s["id"] for s in db.series()])
    assert sorted((i.plugin, i.name, len(i.instances)) for i in selected(loadables)) == [
        ("mosaic", "1: Axial (Siemens mosaic: 4 slices)", 4),
        ("multiframe", "2: Axial (2 volumes over 2 echo times)", 8)]  # both echoes: one 4D reading
