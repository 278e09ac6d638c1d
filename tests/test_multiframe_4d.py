"""An enhanced (multi-frame) 4D file — time points, echoes, diffusion — is ONE 4D loadable, selected, as a classic
4D series is (examine/sequence.py): its volumes in dimension order, each with ``extra["key"]``/``["value"]``; the
per-value loadables stay as alternatives. dcm2niix (the peer) reads the same file as one 4D image with the same
volume order, geometry and voxels. A file whose groups are not one grid gives no 4D loadable and says why."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicomtui.core.database import DicomDatabase
from dicomtui.core.examine import examine_series, load
from dicomtui.core.examine.plugin import CONF_DOUBTFUL, CONF_DOUBTFUL_PART, CONF_SEQUENCE, CONF_SUB
from dicomtui.core.indexer import import_paths
from dicomtui.core.synth import SeriesSpec, write_enhanced
from tests.conftest import require_program

SPEC = SeriesSpec(slices=5, rows=12, cols=10, modality="MR", slice_spacing=3.0, pixel_spacing=(0.8, 0.7),
                  orientation=(1.0, 0.0, 0.0, 0.0, 0.0, -1.0), origin=(-4.0, 7.5, 20.0), series_description="DCE")
TIME_POINTS = 4
ECHOES = (10.0, 25.0, 40.0)
BVALUES = (0.0, 1000.0, 1000.0, 1000.0)
GRADIENTS = (None, (1.0, 0.0, 0.0), (0.0, 0.7071068, 0.7071068), (0.0, 0.0, 1.0))
# a fixed shuffle of the frames in the file: loading must order them by their dimension values, not file order
SHUFFLE = np.random.default_rng(7).permutation


def rewrite(path: Path, change: Callable[[Dataset], None]) -> Path:
    """``path`` changed by ``change``, as Philips writes it: dcm2niix (2022-07-20) orders the frames of an enhanced
    MR by their dimension indices only when tuned for Philips; without a Manufacturer it put frames of all four
    time points into each volume."""
    ds = pydicom.dcmread(path)
    ds.Manufacturer = "Philips"
    change(ds)
    ds.save_as(path)
    return path


def shuffled(ds: Dataset) -> None:
    """The frames of ``ds`` (per-frame groups and pixels together) in a fixed random order."""
    order = SHUFFLE(int(ds.NumberOfFrames))
    frames = ds.pixel_array.reshape(int(ds.NumberOfFrames), ds.Rows, ds.Columns)
    items = list(ds.PerFrameFunctionalGroupsSequence)
    ds.PerFrameFunctionalGroupsSequence = Sequence([items[f] for f in order])
    ds.PixelData = frames[order].astype("<i2").tobytes()


def time_series(path: Path, shuffle: bool = True) -> Path:
    """A DCE-like file: 4 time points × 5 slices, frames shuffled (or in acquisition order); time point t =
    phantom + 100 t."""
    return rewrite(write_enhanced(path, SPEC, time_points=TIME_POINTS), shuffled if shuffle else lambda ds: None)


def declare(ds: Dataset, dimensions: list[tuple[int, int]], index: Callable[[Dataset], list[int]]) -> None:
    """Declare ``dimensions`` ((attribute tag, functional group tag), in order) in the Dimension Index Sequence,
    with ``index(per-frame item)`` as each frame's DimensionIndexValues."""
    dimension_uid = ds.DimensionOrganizationSequence[0].DimensionOrganizationUID
    items = []
    for pointer, group in dimensions:
        item = Dataset()
        item.DimensionOrganizationUID = dimension_uid
        item.DimensionIndexPointer, item.FunctionalGroupPointer = pointer, group
        items.append(item)
    ds.DimensionIndexSequence = Sequence(items)
    for frame in ds.PerFrameFunctionalGroupsSequence:
        frame.FrameContentSequence[0].DimensionIndexValues = index(frame)


def multi_echo(path: Path) -> Path:
    """3 echoes × 5 slices, EffectiveEchoTime in each frame's MR Echo group, declared as a dimension (stack, echo,
    in-stack position: as Philips writes it; synth's file leaves it undeclared, tests/test_realworld_geometry.py)."""
    def change(ds: Dataset) -> None:
        declare(ds, [(0x00209056, 0x00209111), (0x00189082, 0x00189114), (0x00209057, 0x00209111)],
                lambda frame: [1, ECHOES.index(frame.MREchoSequence[0].EffectiveEchoTime) + 1,
                               frame.FrameContentSequence[0].InStackPositionNumber])

    return rewrite(write_enhanced(path, SPEC, echoes=ECHOES), change)


def diffusion(path: Path, shuffle: bool = True) -> Path:
    """b = 0 and three directions at b = 1000, declared dimensions b-value and gradient direction (as Philips
    writes them), frames shuffled (or in acquisition order)."""
    def change(ds: Dataset) -> None:
        declare(ds, [(0x00209056, 0x00209111), (0x00189087, 0x00189117), (0x00189089, 0x00189076),
                     (0x00209057, 0x00209111)],  # stack, b-value, direction, in-stack position
                lambda frame: [1, 1 if BVALUES[(t := frame.FrameContentSequence[0].TemporalPositionIndex - 1)] == 0
                               else 2, max(t, 1), frame.FrameContentSequence[0].InStackPositionNumber])
        for item in ds.PerFrameFunctionalGroupsSequence:
            content = item.FrameContentSequence[0]
            t = content.TemporalPositionIndex - 1
            del content.TemporalPositionIndex
            mr = Dataset()
            mr.DiffusionBValue = BVALUES[t]
            mr.DiffusionDirectionality = "NONE" if GRADIENTS[t] is None else "DIRECTIONAL"
            if GRADIENTS[t] is not None:
                direction = Dataset()
                direction.DiffusionGradientOrientation = list(GRADIENTS[t])
                mr.DiffusionGradientDirectionSequence = Sequence([direction])
            item.MRDiffusionSequence = Sequence([mr])
        if shuffle:
            shuffled(ds)

    return rewrite(write_enhanced(path, SPEC, time_points=len(BVALUES)), change)


def by_hand(path: Path, value: Callable[[Dataset], object]) -> list[np.ndarray]:
    """The file's volumes placed by hand: frames grouped by ``value(per-frame item)`` (in order of first
    appearance after sorting the groups by value), each stacked along the slice normal."""
    ds = pydicom.dcmread(path)
    frames = ds.pixel_array
    iop = np.array(ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient, float)
    normal = np.cross(iop[:3], iop[3:])
    groups: dict[object, list[tuple[float, np.ndarray]]] = {}
    for f, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        position = np.array(item.PlanePositionSequence[0].ImagePositionPatient, float)
        groups.setdefault(value(item), []).append((float(position @ normal), frames[f]))
    return [np.stack([frame for _, frame in sorted(groups[key], key=lambda x: x[0])])
            for key in sorted(groups, key=str)]


def examined(tmp_path: Path, make: Callable[[Path], Path]):
    path = make(tmp_path / "in" / "mf.dcm")
    db = DicomDatabase.open(tmp_path / "db")
    report = import_paths(db, [tmp_path / "in"])
    assert not report.rejected, report.summary()
    return db, path, examine_series(db, [db.series()[0]["id"]])


def test_time_points_are_one_selected_4d_loadable_and_each_time_point_an_alternative(tmp_path: Path) -> None:
    db, path, loadables = examined(tmp_path, time_series)
    with db:
        assert [(i.name, len(i.instances), i.selected, i.confidence, i.warnings) for i in loadables] == [
            ("1: DCE (4 volumes over 4 time points)", 20, True, CONF_SEQUENCE, [])] + [
            (f"1: DCE (time point {t})", 5, False, CONF_SUB, []) for t in range(1, 5)]
        volumes = load(db, loadables[0])
        alone = [load(db, item)[0] for item in loadables[1:]]
    expected = by_hand(path, lambda item: item.FrameContentSequence[0].TemporalPositionIndex)
    assert len(volumes) == TIME_POINTS
    for t, volume in enumerate(volumes):
        assert volume.extra == {"key": "TemporalPositionIdentifier", "value": t + 1, "unit": ""}
        assert np.array_equal(volume.array, expected[t])  # values and slice order (frames were shuffled)
        assert np.array_equal(volume.array, alone[t].array) and np.allclose(volume.affine, alone[t].affine)
    np.testing.assert_allclose(volumes[0].spacing, (0.7, 0.8, 3.0))


def test_echoes_are_one_4d_loadable_in_echo_order(tmp_path: Path) -> None:
    db, path, loadables = examined(tmp_path, multi_echo)
    with db:
        assert [(i.name, i.selected) for i in loadables] == [("1: DCE (3 volumes over 3 echo times)", True)] + [
            (f"1: DCE (echo time {e:g} ms)", False) for e in ECHOES]
        volumes = load(db, loadables[0])
    expected = by_hand(path, lambda item: item.MREchoSequence[0].EffectiveEchoTime)
    assert [(v.extra["key"], v.extra["value"], v.extra["unit"]) for v in volumes] == [
        ("EchoTime", e, "ms") for e in ECHOES]
    assert all(np.array_equal(v.array, e) for v, e in zip(volumes, expected, strict=True))


def test_diffusion_volumes_carry_b_values_and_gradient_directions_in_dimension_order(tmp_path: Path) -> None:
    db, path, loadables = examined(tmp_path, diffusion)
    with db:
        four_d = loadables[0]
        assert (four_d.name, four_d.selected, len(loadables)) == ("1: DCE (4 volumes over 2 b-values)", True, 5)
        assert not any(item.selected for item in loadables[1:])
        assert [item.name for item in loadables[1:3]] == ["1: DCE (b-value 0 s/mm²)",
                                                         "1: DCE (b-value 1000 s/mm², direction 1/0/0)"]
        volumes = load(db, four_d)
    assert [v.extra["bvalue"] for v in volumes] == list(BVALUES)
    assert volumes[0].extra["gradient"] is None
    for volume, gradient in zip(volumes[1:], GRADIENTS[1:], strict=True):
        np.testing.assert_allclose(volume.extra["gradient"], gradient)
    # the written values: phantom + 100 t, t the volume's place in the (unshuffled) acquisition
    assert [int(v.array[2, 6, 5] - volumes[0].array[2, 6, 5]) for v in volumes] == [0, 100, 200, 300]


def test_a_4d_reading_with_warnings_is_still_the_only_default(tmp_path: Path) -> None:
    """Every time point has the same gap (its last slice 4 mm further): the 4D reading warns per volume, as
    sequence.py does, and is loaded by default alone, not beside each time point (they warn too)."""
    def gap(ds: Dataset) -> None:
        for item in ds.PerFrameFunctionalGroupsSequence:
            if item.FrameContentSequence[0].InStackPositionNumber == SPEC.slices:
                position = item.PlanePositionSequence[0]
                position.ImagePositionPatient = [position.ImagePositionPatient[0],
                                                 position.ImagePositionPatient[1] + 4.0,
                                                 position.ImagePositionPatient[2]]

    db, _, loadables = examined(tmp_path, lambda p: rewrite(write_enhanced(p, SPEC, time_points=2), gap))
    with db:
        four_d, *alone = loadables
        assert four_d.selected and four_d.confidence == CONF_DOUBTFUL and four_d.name.endswith("2 time points)")
        assert four_d.warnings and all(w.startswith(("volume 1: ", "volume 2: ")) for w in four_d.warnings)
        assert [(item.selected, item.confidence) for item in alone] == [(False, CONF_DOUBTFUL_PART)] * 2
        assert len(load(db, four_d)) == 2


def test_each_stack_of_a_file_is_its_own_4d_loadable(tmp_path: Path) -> None:
    """Two stacks (StackID 1 and 2: the second 40 mm further along the normal) × 2 time points: one 4D loadable
    per stack, named after it, each with its two time points."""
    def two_stacks(ds: Dataset) -> None:
        for item in ds.PerFrameFunctionalGroupsSequence:
            content = item.FrameContentSequence[0]
            if content.InStackPositionNumber > 3:
                content.StackID = "2"
                content.InStackPositionNumber -= 3
                content.DimensionIndexValues = [2, content.TemporalPositionIndex, content.InStackPositionNumber]

    spec = replace(SPEC, slices=6, positions=[(-4.0, 7.5 + 3.0 * k + (40.0 if k > 2 else 0.0), 20.0)
                                              for k in range(6)])
    db, _, loadables = examined(tmp_path, lambda p: rewrite(write_enhanced(p, spec, time_points=2), two_stacks))
    with db:
        chosen = [(item.name, len(item.instances)) for item in loadables if item.selected]
        assert chosen == [("1: DCE (stack 1, 2 volumes over 2 time points)", 6),
                          ("1: DCE (stack 2, 2 volumes over 2 time points)", 6)]
        volumes = load(db, [item for item in loadables if item.selected][1])
    assert [v.extra["value"] for v in volumes] == [1, 2] and volumes[0].origin[1] == pytest.approx(7.5 + 49.0)


def at_time_point_2(change: Callable[[Dataset], None]) -> Callable[[Dataset], None]:
    """``change(per-frame item)`` applied to the frames of time point 2."""
    def apply(ds: Dataset) -> None:
        for item in ds.PerFrameFunctionalGroupsSequence:
            if item.FrameContentSequence[0].TemporalPositionIndex == 2:
                change(item)
    return apply


def moved(item: Dataset) -> None:  # 1.5 mm head-wards, in the slice plane (a moved table)
    position = item.PlanePositionSequence[0]
    position.ImagePositionPatient = [*position.ImagePositionPatient[:2], position.ImagePositionPatient[2] + 1.5]


def other_pixel_size(item: Dataset) -> None:
    measures = Dataset()
    measures.PixelSpacing, measures.SliceThickness = [0.9, 0.7], 3.0
    item.PixelMeasuresSequence = Sequence([measures])


def tilted(item: Dataset) -> None:  # the plane turned by about 6 degrees around the normal
    plane = Dataset()
    plane.ImageOrientationPatient = [0.9945219, 0.0, -0.1045285, -0.1045285, 0.0, -0.9945219]
    item.PlaneOrientationSequence = Sequence([plane])


@pytest.mark.parametrize(("change", "why"), [
    (moved, "the frames of time point 2 lie at other positions than those of time point 1"),
    (other_pixel_size, "time point 2 has another pixel size than time point 1 (0.9 x 0.7 mm vs 0.8 x 0.7 mm)"),
    (tilted, "time point 2 has another orientation than time point 1")], ids=["moved", "pixel size", "orientation"])
def test_groups_on_different_grids_give_no_4d_loadable_and_say_why(tmp_path: Path, change, why: str) -> None:
    db, _, loadables = examined(
        tmp_path, lambda p: rewrite(write_enhanced(p, SPEC, time_points=2), at_time_point_2(change)))
    with db:
        assert [(i.name, i.selected) for i in loadables] == [("1: DCE (time point 1)", True),
                                                            ("1: DCE (time point 2)", True)]
    assert all(f"not loaded as one 4D image with the other 1 volume: {why}" in item.warnings for item in loadables)


def test_groups_of_different_frame_counts_give_no_4d_loadable(tmp_path: Path) -> None:
    def drop_last(ds: Dataset) -> None:  # the last frame (time point 2, last slice) is missing
        frames = ds.pixel_array
        ds.PerFrameFunctionalGroupsSequence = Sequence(list(ds.PerFrameFunctionalGroupsSequence)[:-1])
        ds.NumberOfFrames = len(frames) - 1
        ds.PixelData = frames[:-1].astype("<i2").tobytes()

    db, _, loadables = examined(tmp_path, lambda p: rewrite(write_enhanced(p, SPEC, time_points=2), drop_last))
    with db:
        assert [i.name for i in loadables] == ["1: DCE (time point 1)", "1: DCE (time point 2)"]
    assert "time point 2 has 4 frames, time point 1 5" in loadables[0].warnings[-1]


def dcm2niix_4d(folder: Path, out: Path):
    """dcm2niix's 4D image of the one file in ``folder``: its one NIfTI, or its echoes (it writes one file per echo,
    NAME_e1, NAME_e2 …) joined in echo order along the fourth axis."""
    import nibabel

    out.mkdir()
    done = subprocess.run([require_program("dcm2niix", "dcm2niix"), "-o", str(out), "-f", "ref", "-z", "n",
                           str(folder)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    images = [nibabel.load(p) for p in sorted(out.glob("*.nii"), key=lambda p: (len(p.name), p.name))]
    if len(images) == 1:
        return images[0]
    assert all(np.allclose(i.affine, images[0].affine) for i in images)
    return nibabel.Nifti1Image(np.stack([np.asarray(i.dataobj) for i in images], axis=-1), images[0].affine)


def fsl_world(bvecs: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """FSL .bvec columns (gradients along the image axes, the first negated when the affine's determinant is
    positive: FSL's radiological convention) as RAS directions: what two files of different voxel orders share."""
    rotation = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    flip = np.diag([-1.0 if np.linalg.det(rotation) > 0 else 1.0, 1.0, 1.0])
    return rotation @ flip @ bvecs


@pytest.mark.interop
@pytest.mark.parametrize("make", [time_series, multi_echo, diffusion, partial(diffusion, shuffle=False)],
                         ids=["time points", "echoes", "diffusion", "diffusion in order"])
def test_load_writes_one_4d_nifti_as_dcm2niix_reads_the_file(tmp_path: Path, make) -> None:
    """`load -o x.nii.gz` of the default selection: one 4D NIfTI; dcm2niix's of the same file has the same shape,
    volume order, affine (within 1e-3 mm, compared in one canonical voxel order) and voxel values; diffusion: the
    same b-values."""
    import nibabel

    db, _, loadables = examined(tmp_path, make)
    db.close()
    done = subprocess.run([sys.executable, "-m", "dicomtui", "--db", str(tmp_path / "db"), "load",
                           loadables[0].series_uid, "-o", str(tmp_path / "ours.nii.gz")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"× {len(loadables) - 1} volumes" in done.stdout
    ours = nibabel.as_closest_canonical(nibabel.load(tmp_path / "ours.nii.gz"))
    peer = nibabel.as_closest_canonical(dcm2niix_4d(tmp_path / "in", tmp_path / "peer"))
    assert ours.shape == peer.shape and len(ours.shape) == 4 and ours.shape[3] == len(loadables) - 1
    np.testing.assert_allclose(ours.affine, peer.affine, atol=1e-3)
    assert np.array_equal(np.asarray(ours.dataobj), np.asarray(peer.dataobj))
    if len(loadables) == 5 and "b-values" in loadables[0].name:
        bvals = [(tmp_path / name).read_text().split() for name in ("ours.bval", "peer/ref.bval")]
        assert [float(b) for b in bvals[0]] == [float(b) for b in bvals[1]] == list(BVALUES)
        ours_raw, peer_raw = nibabel.load(tmp_path / "ours.nii.gz"), nibabel.load(tmp_path / "peer" / "ref.nii")
        worlds = [fsl_world(np.loadtxt(tmp_path / name), image.affine)
                  for name, image in (("ours.bvec", ours_raw), ("peer/ref.bvec", peer_raw))]
        np.testing.assert_allclose(worlds[0], worlds[1], atol=1e-4)
        lps_to_ras = np.diag([-1.0, -1.0, 1.0])
        np.testing.assert_allclose(worlds[0][:, 1:].T, [lps_to_ras @ g for g in GRADIENTS[1:]], atol=1e-4)
