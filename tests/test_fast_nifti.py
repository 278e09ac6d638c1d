"""The one-copy load → NIfTI path (core/nifti_stream.py): the same voxels and affine as loading the volume and
writing it, read back by nibabel; every series it does not handle is named and left to the existing path."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from pydicom.uid import RLELossless

from dicomtui.core import volume_io
from dicomtui.core.database import DicomDatabase
from dicomtui.core.errors import LoadError, PixelError
from dicomtui.core.examine import LoadOptions, choose, examine_series, load
from dicomtui.core.indexer import import_paths
from dicomtui.core.nifti_stream import stream_nifti, unsupported
from dicomtui.core.synth import SeriesSpec, series_datasets, write_series


def _write(folder: Path, spec: SeriesSpec, change: Callable | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, ds in enumerate(series_datasets(spec)):
        if change is not None:
            change(i, ds)
        ds.save_as(folder / f"IM{i:05d}.dcm", enforce_file_format=True)


def _loadable(db: DicomDatabase, folder: Path, regularize: bool = False):
    report = import_paths(db, [folder], "link")
    assert not report.rejected, report.rejected
    series = db.series()
    assert len(series) == 1
    return choose(examine_series(db, [series[0]["id"]]), first_only=True)[0]


def _both_paths(db: DicomDatabase, loadable, tmp_path: Path, ext: str) -> tuple[nib.Nifti1Image, nib.Nifti1Image]:
    streamed = stream_nifti(db, loadable, tmp_path / f"stream{ext}")
    assert streamed is not None and streamed.path == tmp_path / f"stream{ext}"
    volume_io.write_volume(load(db, loadable), tmp_path / f"existing{ext}")
    return nib.load(tmp_path / f"stream{ext}"), nib.load(tmp_path / f"existing{ext}")


@pytest.mark.parametrize("ext", [".nii", ".nii.gz"])
def test_a_ct_stack_streamed_has_the_voxels_and_affine_of_load_then_write(tmp_path: Path, ext: str) -> None:
    """Given a CT series (int16, RescaleIntercept -1024) in an oblique orientation, when streamed, then nibabel
    reads the same voxels (stored values + scl_inter, exactly) and the same affine as the existing path."""
    spec = SeriesSpec(slices=7, rows=12, cols=10, orientation=(0.8, 0.6, 0.0, 0.0, 0.0, -1.0),
                      pixel_spacing=(0.7, 0.9), slice_spacing=2.5)
    _write(tmp_path / "ct", spec)
    with DicomDatabase.open(tmp_path / "db") as db:
        ours, existing = _both_paths(db, _loadable(db, tmp_path / "ct"), tmp_path, ext)
    assert ours.shape == existing.shape == (10, 12, 7)
    assert ours.get_data_dtype() == np.int16 and ours.dataobj.inter == -1024  # nibabel moves scl_* there
    np.testing.assert_array_equal(np.asanyarray(ours.dataobj), np.asanyarray(existing.dataobj))
    np.testing.assert_allclose(ours.affine, existing.affine, atol=1e-6)
    assert ours.header.get_qform(coded=True)[1] == 1 and ours.header.get_sform(coded=True)[1] == 1
    np.testing.assert_allclose(ours.header.get_qform(), existing.header.get_qform(), atol=1e-5)


def test_unsigned_with_a_fractional_slope_keeps_the_stored_integers_and_scales_in_the_header(tmp_path: Path) -> None:
    """Given uint16 with RescaleSlope 0.5 and RescaleIntercept 1.25 (the existing path writes float32), when
    streamed, then the file keeps uint16 and scl_slope/scl_inter; nibabel's scaled values equal the existing
    float32 ones to float32 precision, and the stored integers are the files' own."""
    def unsigned(i: int, ds) -> None:
        ds.PixelRepresentation = 0
        ds.RescaleSlope, ds.RescaleIntercept = 0.5, 1.25
        ds.PixelData = (np.arange(ds.Rows * ds.Columns, dtype="<u2") * 7 + 40000 + i).tobytes()

    _write(tmp_path / "u", SeriesSpec(slices=4, rows=6, cols=5), unsigned)
    with DicomDatabase.open(tmp_path / "db") as db:
        ours, existing = _both_paths(db, _loadable(db, tmp_path / "u"), tmp_path, ".nii")
    assert ours.get_data_dtype() == np.uint16 and existing.get_data_dtype() == np.float32
    assert (ours.dataobj.slope, ours.dataobj.inter) == (0.5, 1.25)
    np.testing.assert_allclose(np.asanyarray(ours.dataobj), np.asanyarray(existing.dataobj), rtol=1e-7)
    stored = np.asanyarray(ours.dataobj.get_unscaled())
    assert stored[0, 0, 3] == 40003 and stored[1, 0, 0] == 40007  # [i, j, k]: column 1 is 7 more


def test_bits_stored_below_bits_allocated_are_masked_as_the_existing_path_masks(tmp_path: Path) -> None:
    """High bits above BitsStored (overlay bits) do not reach the file: the buffer goes through pixels.read_into."""
    def twelve_bits(i: int, ds) -> None:
        ds.PixelRepresentation, ds.BitsStored, ds.HighBit = 0, 12, 11
        ds.PixelData = (np.full(ds.Rows * ds.Columns, 0xF000 | (100 + i), dtype="<u2")).tobytes()

    _write(tmp_path / "b", SeriesSpec(slices=3, rows=4, cols=4), twelve_bits)
    with DicomDatabase.open(tmp_path / "db") as db:
        ours, existing = _both_paths(db, _loadable(db, tmp_path / "b"), tmp_path, ".nii")
    np.testing.assert_array_equal(np.asanyarray(ours.dataobj), np.asanyarray(existing.dataobj))
    assert float(np.asanyarray(ours.dataobj).max()) == 102 - 1024


def test_what_the_stream_does_not_handle_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    """NRRD, a regularized irregular stack, mixed rescale, compressed, colour and multi-frame rows each have their
    reason; stream_nifti then returns None without creating the file (the CLI takes the existing path)."""
    spec = SeriesSpec(slices=5, rows=6, cols=6, positions=[(0, 0, z) for z in (0, 2, 4, 7, 9)])
    _write(tmp_path / "irr", spec)
    with DicomDatabase.open(tmp_path / "db") as db:
        item = _loadable(db, tmp_path / "irr")
        assert unsupported(item, tmp_path / "x.nii") is None  # irregular but not resampled: streamed as acquired
        assert unsupported(item, tmp_path / "x.nrrd") == "NRRD output"
        regularize = LoadOptions(regularize=True)
        assert unsupported(item, tmp_path / "x.nii", regularize) == "resampling an irregular stack (--regularize)"
        assert stream_nifti(db, item, tmp_path / "r.nii", regularize) is None
        assert not list(tmp_path.glob("*r.nii*"))
        rows = item.instances
        for change, reason in [({"RescaleIntercept": -1000.0}, "RescaleIntercept differs between slices"),
                               ({"RescaleSlope": 2.0}, "RescaleSlope differs between slices"),
                               ({"TransferSyntaxUID": str(RLELossless)}, "compressed or big-endian"),
                               ({"SamplesPerPixel": 3}, "colour images"),
                               ({"NumberOfFrames": 2}, "multi-frame images"),
                               ({"Rows": 7}, "images of different sizes"),
                               ({"pixel_offset": None}, "no recorded Pixel Data offset"),
                               ({"PixelRepresentation": 0}, "several stored types")]:
            item.instances = [rows[0], {**rows[1], **change}, *rows[2:]]
            assert unsupported(item, tmp_path / "x.nii.gz") == reason, change
        item.instances, item.plugin = rows, "sequence"
        assert unsupported(item, tmp_path / "x.nii") == "a sequence loadable (multi-frame or 4D)"


@pytest.mark.parametrize("ext", [".nii", ".nii.gz"])
def test_a_cancelled_or_failed_stream_leaves_no_file(tmp_path: Path, ext: str) -> None:
    """Cancel between slices raises LoadError; a slice file gone raises; neither leaves the output nor the
    temporary file beside it."""
    write_series(tmp_path / "s", SeriesSpec(slices=6, rows=8, cols=8))
    out = tmp_path / "out"
    out.mkdir()
    with DicomDatabase.open(tmp_path / "db") as db:
        item = _loadable(db, tmp_path / "s")
        cancel = threading.Event()

        def progress(done: int, total: int) -> None:
            if done == 2:
                cancel.set()

        with pytest.raises(LoadError, match="cancelled"):
            stream_nifti(db, item, out / f"c{ext}", progress=progress, cancel=cancel)
        assert list(out.iterdir()) == []
        Path(item.instances[3]["path"]).unlink()
        with pytest.raises(PixelError, match="cannot decode pixels"):  # the direct read failed, then pydicom's
            stream_nifti(db, item, out / f"f{ext}")
        assert list(out.iterdir()) == []


def test_progress_counts_every_slice(tmp_path: Path) -> None:
    write_series(tmp_path / "s", SeriesSpec(slices=5, rows=8, cols=8))
    seen: list[tuple[int, int]] = []
    with DicomDatabase.open(tmp_path / "db") as db:
        stream_nifti(db, _loadable(db, tmp_path / "s"), tmp_path / "p.nii.gz",
                     progress=lambda done, total: seen.append((done, total)))
    assert seen == [(k, 5) for k in range(1, 6)]


def test_the_load_command_streams_and_says_what_it_wrote(tmp_path: Path) -> None:
    """`dicomtui load` takes the one-copy path (the stored integers and scl_inter are in the file) and prints
    the line the existing path prints; --regularize of an irregular stack still resamples (existing path)."""
    import subprocess
    import sys

    write_series(tmp_path / "s", SeriesSpec(slices=4, rows=8, cols=8))
    with DicomDatabase.open(tmp_path / "db") as db:
        import_paths(db, [tmp_path / "s"], "link")
        uid = db.series()[0]["SeriesInstanceUID"]
    out = subprocess.run([sys.executable, "-m", "dicomtui", "--db", str(tmp_path / "db"), "load", uid, "-o",
                          str(tmp_path / "s.nii.gz")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"wrote {tmp_path / 's.nii.gz'}: 8x8x4 voxels of int16, spacing 0.5 x 0.5 x 2 mm (1: Axial)\n"
    img = nib.load(tmp_path / "s.nii.gz")
    assert img.dataobj.inter == -1024 and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_nrrd_is_deflated_at_the_fast_level(tmp_path: Path) -> None:
    """pynrrd's default level 9 costs 10x level 1 for 4 % of size: the gzip header's XFL byte says which (4 is
    "fastest", 2 "maximum", RFC 1952)."""
    from dicomtui.core.volume import Volume

    volume = Volume(array=np.arange(4 * 8 * 8, dtype=np.int16).reshape(4, 8, 8), affine=np.eye(4), name="v")
    path = volume_io.write_volume(volume, tmp_path / "v.nrrd")[0]
    data = path.read_bytes()
    gz = data[data.index(b"\n\n") + 2 :]
    assert gz[:2] == b"\x1f\x8b" and gz[8] == 4
