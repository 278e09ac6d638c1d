"""Issue 14 item 7, the loader: series that are not one volume (images of several sizes, grey and colour, projection
images without a place in the patient) offered as "images one by one" — one single-image Volume each, at its own
size — and the cine rate (PS3.3 C.7.6.5: CineRate, else 1000 / FrameTime, else Frame Time Vector) that ``p`` plays
at, on generated files and pydicom's US cine."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import UID

from dicomtui.core.database import DicomDatabase
from dicomtui.core.examine import choose, examine_series, load, load_loadables
from dicomtui.core.examine.cine import frame_rate_of
from dicomtui.core.examine.confidence import confidence_sentence
from dicomtui.core.examine.plugin import CONF_IMAGES
from dicomtui.core.indexer import import_paths
from dicomtui.core.synth import SeriesSpec, series_datasets, uid
from dicomtui.core.synth_pixels import colour_series, undecodable, write_datasets

US_MULTIFRAME = UID("1.2.840.10008.5.1.4.1.1.3.1")
US_IMAGE = UID("1.2.840.10008.5.1.4.1.1.6.1")
SIZES = [(40, 60), (64, 48), (30, 30)]  # (rows, columns) of the grey images


def unplaced(ds: Dataset, modality: str, sop_class: str, number: int, series_uid: str) -> Dataset:
    """``ds`` as image ``number`` of series ``series_uid``, a ``modality`` image with no place in the patient."""
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "SliceThickness", "FrameOfReferenceUID"):
        delattr(ds, keyword)
    ds.Modality = modality
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
    ds.SeriesInstanceUID = series_uid
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = UID(uid("img", series_uid, number))
    ds.InstanceNumber = number
    return ds


def mixed_us_series(folder: Path, cine_rate: int | None = None) -> str:
    """Four US images of one series, none placed: three grey ones of the SIZES (pixel value 100 n + row), written
    in reverse InstanceNumber order, and one 20x24 RGB one (number 4); the first may carry CineRate. Its UID."""
    series_uid = uid("series", "mixed-us")
    datasets = []
    for n, (rows, cols) in enumerate(SIZES, 1):
        spec = SeriesSpec(slices=1, rows=rows, cols=cols, modality="US", pixel_spacing=(0.3 * n, 0.2 * n))
        (ds,) = series_datasets(spec, lambda _i, s, n=n: 100 * n + np.repeat(np.arange(s.rows)[:, None], s.cols, 1))
        datasets.append(unplaced(ds, "US", US_IMAGE, n, series_uid))
    if cine_rate is not None:
        datasets[0].CineRate = cine_rate
    (colour,) = colour_series(SeriesSpec(slices=1, rows=20, cols=24, modality="US"))
    datasets.append(unplaced(colour, "US", US_IMAGE, 4, series_uid))
    write_datasets(folder, datasets[::-1])
    return series_uid


def us_cine(folder: Path, frames: int = 6, **cine: object) -> Path:
    """A grey US Multi-frame Image (PS3.3 A.7) of ``frames`` 16x20 frames (frame f is all 10 f), with the Cine
    Module attributes ``cine`` (FrameTime, CineRate, FrameTimeVector…)."""
    (ds,) = series_datasets(SeriesSpec(slices=1, rows=16, cols=20, modality="US", series_description="cine"))
    ds = unplaced(ds, "US", US_MULTIFRAME, 1, uid("series", "cine", len(cine)))
    ds.NumberOfFrames = frames
    ds.FrameIncrementPointer = pydicom.tag.Tag("FrameTimeVector" if "FrameTimeVector" in cine else "FrameTime")
    for keyword, value in cine.items():
        setattr(ds, keyword, value)
    ds.PixelData = np.repeat(np.arange(frames, dtype="<i2") * 10, 16 * 20).tobytes()
    (path,) = write_datasets(folder, [ds])
    return path


def examined(tmp_path: Path, folder: Path):
    db = DicomDatabase.open(tmp_path / "db")
    import_paths(db, [folder])
    return db, examine_series(db, [s["id"] for s in db.series()])


def test_images_of_several_sizes_grey_and_colour_load_one_by_one_at_their_own_size(tmp_path: Path) -> None:
    mixed_us_series(tmp_path / "in", cine_rate=25)
    db, loadables = examined(tmp_path, tmp_path / "in")
    with db:
        (chosen,) = choose(loadables)  # before: nothing (the whole cannot be stacked, no size has two images)
        assert chosen.plugin == "images" and chosen.confidence == CONF_IMAGES
        assert chosen.name == "1: Axial (images one by one)" and not chosen.warnings
        assert [row["InstanceNumber"] for row in chosen.instances] == [1, 2, 3, 4]  # InstanceNumber order
        volumes = load(db, chosen)
    assert [v.array.shape for v in volumes] == [(1, 40, 60), (1, 64, 48), (1, 30, 30), (1, 20, 24, 3)]
    assert [v.name for v in volumes][:2] == ["image 1: 60x40 MONOCHROME2", "image 2: 48x64 MONOCHROME2"]
    for n, volume in enumerate(volumes[:3], 1):  # each its own values and pixel size (columns, rows) in mm
        assert np.array_equal(volume.array[0], 100 * n + np.repeat(np.arange(SIZES[n - 1][0])[:, None],
                                                                   SIZES[n - 1][1], 1))
        assert volume.spacing[:2] == pytest.approx((0.2 * n, 0.3 * n))
    assert volumes[3].is_rgb and volumes[3].array[0, 5, 7].tolist() == [28, 20, 40]  # R 4 i, G 4 j, B 40
    assert all(v.extra["frame_rate"] == 25.0 for v in volumes)  # the first image's CineRate


def test_projection_images_of_one_size_are_shown_one_by_one_before_a_doubtful_stack(tmp_path: Path) -> None:
    """Two CR views (PA, lateral) of one size: stacking them 1 mm apart is a doubtful reading; one by one wins."""
    series_uid = uid("series", "cr")
    datasets = []
    for n in (1, 2):
        (ds,) = series_datasets(SeriesSpec(slices=1, rows=32, cols=24, modality="CR", seed=n))
        ds = unplaced(ds, "CR", "1.2.840.10008.5.1.4.1.1.1", n, series_uid)
        del ds.PixelSpacing
        ds.ImagerPixelSpacing = [0.15, 0.1]
        datasets.append(ds)
    write_datasets(tmp_path / "in", datasets)
    db, loadables = examined(tmp_path, tmp_path / "in")
    with db:
        stacked = next(item for item in loadables if item.plugin == "scalar")
        (chosen,) = choose(loadables)
        assert chosen.plugin == "images" and stacked.confidence < chosen.confidence
        volumes = load(db, chosen)
    assert [v.array.shape for v in volumes] == [(1, 32, 24)] * 2
    assert volumes[0].spacing[:2] == pytest.approx((0.1, 0.15))  # ImagerPixelSpacing (row, column) as (x, y)
    assert all("frame_rate" not in v.extra for v in volumes)  # nothing said: the viewer's default


def test_a_volume_is_never_offered_one_by_one_and_a_clean_size_wins(tmp_path: Path) -> None:
    """A placed CT series: no per-image reading. With a localizer of another size, the clean CT part is chosen;
    the one-by-one reading is listed below it."""
    ct = series_datasets(SeriesSpec(slices=4, rows=16, cols=16))
    write_datasets(tmp_path / "ct", ct)
    db, loadables = examined(tmp_path / "a", tmp_path / "ct")
    with db:
        assert [item.plugin for item in loadables] == ["scalar"]
    (scout,) = series_datasets(SeriesSpec(slices=1, rows=8, cols=12, origin=(0.0, 0.0, 50.0)))
    scout.SeriesInstanceUID = ct[0].SeriesInstanceUID
    scout.SOPInstanceUID = scout.file_meta.MediaStorageSOPInstanceUID = UID(uid("scout", 1))
    write_datasets(tmp_path / "ct", [scout], name="SCOUT.dcm")
    db, loadables = examined(tmp_path / "b", tmp_path / "ct")
    with db:
        (chosen,) = choose(loadables)
        assert chosen.plugin == "scalar" and len(chosen.instances) == 4
        per_image = next(item for item in loadables if item.plugin == "images")
        assert not per_image.selected and len(per_image.instances) == 5


def test_an_unreadable_image_is_left_out_by_name_and_the_others_load(tmp_path: Path) -> None:
    mixed_us_series(tmp_path / "in")
    bad = tmp_path / "in" / "IM00003.dcm"  # written in reverse: image 2
    undecodable(pydicom.dcmread(bad)).save_as(bad, enforce_file_format=True)
    db, loadables = examined(tmp_path, tmp_path / "in")
    with db:
        report = load_loadables(db, choose(loadables))
    (result,) = report.loaded
    assert [v.name.split(":")[0] for v in result.volumes] == ["image 1", "image 3", "image 4"]
    (found,) = result.found_warnings
    assert found.startswith("left out, unreadable: ") and "IM00003.dcm" in found


@pytest.mark.parametrize(("cine", "fps"), [
    ({"CineRate": 25}, 25.0),
    ({"CineRate": 25, "FrameTime": 100.0}, 25.0),  # CineRate first
    ({"RecommendedDisplayFrameRate": 12, "FrameTime": 100.0}, 12.0),
    ({"FrameTime": 40.0}, 25.0),
    ({"FrameTime": 0.0, "FrameTimeVector": [0.0, 50.0, 50.0, 100.0]}, 1000 / (200 / 3)),  # first increment is 0
    ({"CineRate": 0}, None),
    ({}, None),
])
def test_the_frame_rate_is_the_cine_modules(cine: dict, fps: float | None) -> None:
    ds = Dataset()
    for keyword, value in cine.items():
        setattr(ds, keyword, value)
    assert frame_rate_of(ds) == (pytest.approx(fps) if fps is not None else None)


def test_a_us_cine_plays_at_its_frame_time(tmp_path: Path) -> None:
    us_cine(tmp_path / "in", FrameTime=66.667)
    db, loadables = examined(tmp_path, tmp_path / "in")
    with db:
        (chosen,) = choose(loadables)
        (volume,) = load(db, chosen)
    assert volume.array.shape == (6, 16, 20) and volume.array[3].max() == 30
    assert volume.extra["frame_rate"] == pytest.approx(1000 / 66.667)


def test_a_us_cine_with_a_frame_time_vector_plays_at_its_mean(tmp_path: Path) -> None:
    us_cine(tmp_path / "in", frames=4, FrameTimeVector=[0.0, 20.0, 40.0, 60.0])
    db, loadables = examined(tmp_path, tmp_path / "in")
    with db:
        (volume,) = load(db, choose(loadables)[0])
    assert volume.extra["frame_rate"] == pytest.approx(25.0)


def test_pydicoms_us_cine_plays_at_its_frame_time(tmp_path: Path) -> None:
    source = get_testdata_file("examples_ybr_color.dcm", download=False)
    if source is None:
        pytest.skip("pydicom's test file examples_ybr_color.dcm is not installed")
    (tmp_path / "in").mkdir()
    shutil.copy(source, tmp_path / "in")
    db, loadables = examined(tmp_path, tmp_path / "in")
    with db:
        (volume,) = load(db, choose(loadables)[0])
    assert volume.array.shape[0] == 30 and volume.is_rgb
    assert volume.extra["frame_rate"] == pytest.approx(1000 / float(pydicom.dcmread(source).FrameTime))  # 33.333 ms


def test_the_examine_listing_names_the_reading_and_its_confidence(tmp_path: Path) -> None:
    from tests.test_cli import run

    mixed_us_series(tmp_path / "in")
    db = str(tmp_path / "db")
    assert run("--db", db, "import", str(tmp_path / "in")).returncode == 0
    out = run("--db", db, "examine", uid("series", "mixed-us"))
    assert out.returncode == 0, out.stderr
    line = next(line for line in out.stdout.splitlines() if "images one by one" in line)
    assert line.startswith("*") and "[images, confidence 0.42" in line, out.stdout
    assert confidence_sentence(CONF_IMAGES).startswith("0.42: every image shown alone at its own size")


def test_cli_load_writes_images_one_by_one_each_to_its_own_file(tmp_path: Path) -> None:
    """Images of several sizes cannot be one 4D file: each is written alone, numbered, its line naming it."""
    import nibabel

    from tests.test_cli import run

    mixed_us_series(tmp_path / "in")
    db = str(tmp_path / "db")
    assert run("--db", db, "import", str(tmp_path / "in")).returncode == 0
    out = run("--db", db, "load", uid("series", "mixed-us"), "-o", str(tmp_path / "x.nii.gz"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"wrote {tmp_path / f'x-{n}.nii.gz'}" for n in range(1, 5)]
    assert lines[1].endswith("(1: Axial (images one by one), image 2: 48x64 MONOCHROME2)")
    assert [nibabel.load(tmp_path / f"x-{n}.nii.gz").shape[:2] for n in range(1, 4)] == [(60, 40), (48, 64), (30, 30)]
