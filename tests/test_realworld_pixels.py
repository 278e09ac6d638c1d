"""Issue 11 items 7-12: the pixels of real-world series. Each right value is pydicom's (``pixel_array``,
``convert_color_space``, ``apply_color_lut``, ``apply_modality_lut``, ``apply_windowing``) or the standard's
(PS3.3 C.7.6.3, C.11.1, C.11.2, C.11.6), on generated files and on files pydicom ships."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_color_lut, apply_modality_lut, convert_color_space, pixel_array

from dicomtui.core.database import DicomDatabase
from dicomtui.core.errors import LoadError, PixelError
from dicomtui.core.examine import choose, examine_series, load
from dicomtui.core.examine.plugin import CONF_NO_PIXELS
from dicomtui.core.indexer import import_paths
from dicomtui.core.synth import SeriesSpec, series_datasets
from dicomtui.core.synth_pixels import (
    colour_series,
    palette_series,
    structured_report,
    undecodable,
    with_modality_lut,
    write_datasets,
)
from dicomtui.core.volume import Presentation, Volume, display, view
from dicomtui.core.volume_io import write_volume

SPEC = SeriesSpec(slices=3, rows=12, cols=16, pixel_spacing=(0.7, 0.5), slice_spacing=2.5, origin=(1.0, 2.0, 3.0))


def shipped(name: str) -> Path:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom's test file {name} is not installed")
    return Path(path)


def examined(tmp_path: Path, *folders: Path):
    """Import ``folders`` into a fresh database; the database and its loadables (every series)."""
    db = DicomDatabase.open(tmp_path / "db")
    import_paths(db, list(folders))
    return db, examine_series(db, [s["id"] for s in db.series()])


def load_default(tmp_path: Path, folder: Path) -> Volume:
    db, loadables = examined(tmp_path, folder)
    with db:
        (chosen,) = choose(loadables)
        (volume,) = load(db, chosen)
    return volume


def load_shipped(tmp_path: Path, name: str) -> tuple[Volume, Path]:
    """pydicom's test file ``name`` imported alone and loaded by default; the volume and the file."""
    source = shipped(name)
    (tmp_path / "in").mkdir()
    shutil.copy(source, tmp_path / "in")
    return load_default(tmp_path, tmp_path / "in"), source


def grey_and_colour(folder: Path) -> str:
    """Three grey and three colour images of one series (same positions) written into ``folder``; its UID."""
    grey = series_datasets(SPEC)
    colour = colour_series(SPEC)
    for n, ds in enumerate(colour):
        ds.SeriesInstanceUID = grey[0].SeriesInstanceUID
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{ds.SOPInstanceUID[:50]}.8{n}"
    write_datasets(folder, grey + colour)
    return str(grey[0].SeriesInstanceUID)


def expected_stack(paths: list[Path], convert) -> np.ndarray:
    return np.stack([convert(pydicom.dcmread(p)) for p in paths])


# ---- item 7: colour -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("photometric, planar", [("RGB", 0), ("RGB", 1), ("YBR_FULL", 0)])
def test_a_colour_series_loads_as_rgb_equal_to_pydicom(tmp_path: Path, photometric: str, planar: int) -> None:
    paths = write_datasets(tmp_path / "in", colour_series(SPEC, photometric, planar))
    volume = load_default(tmp_path, tmp_path / "in")
    assert volume.array.shape == (3, 12, 16, 3) and volume.array.dtype == np.uint8 and volume.is_rgb
    assert volume.photometric == "RGB" and volume.windows == []
    # pydicom 3's pixel_array converts YBR_FULL with convert_color_space; RGB is as stored, either planar layout
    want = expected_stack(paths, lambda ds: ds.pixel_array)
    assert np.array_equal(volume.array, want)
    if photometric != "RGB":
        raw = expected_stack(paths, lambda ds: pixel_array(ds, as_rgb=False))
        assert np.array_equal(volume.array, convert_color_space(raw, photometric, "RGB"))
    assert int(volume.array[2, 5, 7, 0]) == 28 and int(volume.array[2, 5, 7, 1]) in (19, 20, 21)  # R = 4 i, G ≈ 4 j
    np.testing.assert_allclose(volume.spacing, (0.5, 0.7, 2.5))  # placed like any stack
    np.testing.assert_allclose(volume.origin, (1.0, 2.0, 3.0))


def test_a_ybr_full_422_jpeg_cine_loads_in_colour(tmp_path: Path) -> None:
    """pydicom's US cine (30 frames, JPEG Baseline YBR_FULL_422): a multi-frame colour loadable."""
    volume, source = load_shipped(tmp_path, "examples_ybr_color.dcm")
    ds = pydicom.dcmread(source)
    assert volume.array.shape == (30, 240, 320, 3)
    assert np.array_equal(volume.array, convert_color_space(pixel_array(ds, as_rgb=False), "YBR_FULL_422", "RGB"))


@pytest.mark.parametrize("bits", [16, 8])
def test_palette_colour_is_applied(tmp_path: Path, bits: int) -> None:
    paths = write_datasets(tmp_path / "in", palette_series(SPEC, bits))
    volume = load_default(tmp_path, tmp_path / "in")
    # apply_color_lut gives the LUT's entries: 16-bit entries keep their high byte in RGB uint8
    want = expected_stack(paths, lambda ds: apply_color_lut(ds.pixel_array, ds) >> (bits - 8))
    assert volume.array.dtype == np.uint8 and np.array_equal(volume.array, want)


def test_pydicoms_palette_file_loads_as_its_lut_says(tmp_path: Path) -> None:
    volume, source = load_shipped(tmp_path, "examples_palette.dcm")
    ds = pydicom.dcmread(source)
    assert np.array_equal(volume.array[0], (apply_color_lut(ds.pixel_array, ds) >> 8).astype(np.uint8))


def shipped_colour_files() -> list[Path]:
    """Every colour or palette file pydicom ships (RGB, YBR_FULL/_422, YBR_RCT; native, JPEG, JPEG-LS, JPEG 2000,
    RLE; 8 to 32 bits; 1 or 2 frames)."""
    import warnings

    found = []
    for path in sorted((Path(pydicom.__file__).parent / "data" / "test_files").rglob("*.dcm")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True)
            except Exception:  # noqa: BLE001 - pydicom's deliberately broken files
                continue
        if (ds.get("SamplesPerPixel") or 1) > 1 or ds.get("PhotometricInterpretation") == "PALETTE COLOR":
            found.append(path)
    return found


@pytest.mark.filterwarnings("ignore:Expected explicit VR:UserWarning")  # SC_rgb_jpeg.dcm's own header
def test_every_colour_file_pydicom_ships_reads_as_its_rgb() -> None:
    from dicomtui.core.pixels import _read_pydicom

    files = shipped_colour_files()
    assert len(files) >= 20
    for path in files:
        ds = pydicom.dcmread(path)
        want = ds.pixel_array  # YBR converted by pydicom 3
        if ds.PhotometricInterpretation == "PALETTE COLOR":
            want, bits = apply_color_lut(want, ds), ds.RedPaletteColorLookupTableDescriptor[2]
        else:
            bits = ds.BitsStored
        want = (want >> (bits - 8)).astype(np.uint8) if bits > 8 else want
        got = _read_pydicom(path, frames=(ds.get("NumberOfFrames") or 1) > 1, colour=True)
        assert np.array_equal(got, want), path.name


def test_colour_is_written_as_nifti_rgb24_and_nrrd_rgb_color(tmp_path: Path) -> None:
    import nibabel
    import nrrd

    write_datasets(tmp_path / "in", colour_series(SPEC))
    volume = load_default(tmp_path, tmp_path / "in")
    write_volume(volume, tmp_path / "out.nii.gz")
    image = nibabel.load(tmp_path / "out.nii.gz")
    assert image.header["datatype"] == 128 and image.header["bitpix"] == 24 and image.shape == (16, 12, 3)
    data = np.asanyarray(image.dataobj)  # structured (R, G, B), indexed [i, j, k]
    rgb = np.stack([data[c] for c in "RGB"], axis=-1)
    assert np.array_equal(rgb, volume.array.transpose(2, 1, 0, 3))
    np.testing.assert_allclose(image.affine, np.diag([-1, -1, 1, 1]) @ volume.affine, atol=1e-5)
    write_volume(volume, tmp_path / "out.nrrd")
    data, header = nrrd.read(str(tmp_path / "out.nrrd"))
    assert data.shape == (3, 16, 12, 3) and header["kinds"] == ["RGB-color", "domain", "domain", "domain"]
    assert np.array_equal(data.transpose(3, 2, 1, 0), volume.array)


def test_colour_nifti_equals_dcm2niix_in_patient_space(tmp_path: Path) -> None:
    """dcm2niix writes RGB24 too; it flips the rows (its affine says so): compare voxels at the same LPS point."""
    import subprocess

    import nibabel

    from tests.conftest import require_program

    dcm2niix = require_program("dcm2niix", "dcm2niix")
    write_datasets(tmp_path / "in", colour_series(SPEC))
    volume = load_default(tmp_path, tmp_path / "in")
    write_volume(volume, tmp_path / "ours.nii")
    (tmp_path / "peer").mkdir()
    done = subprocess.run([dcm2niix, "-o", str(tmp_path / "peer"), "-f", "peer", str(tmp_path / "in")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    ours, peer = nibabel.load(tmp_path / "ours.nii"), nibabel.load(tmp_path / "peer" / "peer.nii")
    assert peer.header["datatype"] == 128 and ours.shape == peer.shape

    def by_world(image):
        data = np.asanyarray(image.dataobj)
        rgb = np.stack([data[c] for c in "RGB"], axis=-1)
        index = np.indices(image.shape).reshape(3, -1)
        world = (image.affine[:3, :3] @ index + image.affine[:3, 3:4]).round(3)
        order = np.lexsort(world)
        return world[:, order], rgb.reshape(-1, 3)[order]

    (w_ours, v_ours), (w_peer, v_peer) = by_world(ours), by_world(peer)
    np.testing.assert_allclose(w_ours, w_peer, atol=1e-3)
    assert np.array_equal(v_ours, v_peer)


def test_the_viewer_gets_rgb_slices_in_every_plane(tmp_path: Path) -> None:
    write_datasets(tmp_path / "in", colour_series(SPEC))
    volume = load_default(tmp_path, tmp_path / "in")
    for plane, shape in [("axial", (12, 16, 3)), ("coronal", (3, 16, 3)), ("sagittal", (3, 12, 3))]:
        v = view(volume, plane)
        shown = display(v.data[0], 40, 400, v.presentation)
        assert shown.shape == shape and shown.dtype == np.uint8
    axial = view(volume, "axial").data[1]
    assert np.array_equal(display(axial, 0, 1, Presentation(photometric="RGB")), volume.array[1])  # not windowed


# ---- item 8: a default loadable always loads -----------------------------------------------------------------

def test_objects_without_pixels_are_listed_by_what_they_are_and_never_selected(tmp_path: Path) -> None:
    write_datasets(tmp_path / "sr", [structured_report(SeriesSpec(series_number=7))])
    (tmp_path / "plan").mkdir()
    shutil.copy(shipped("rtplan.dcm"), tmp_path / "plan")
    db, loadables = examined(tmp_path, tmp_path / "sr", tmp_path / "plan")
    with db:
        assert sorted(item.warnings[0] for item in loadables) == [
            "a structured report: no image to load", "an RT plan: no image to load"]
        assert all(item.confidence == CONF_NO_PIXELS and not item.selected for item in loadables)
        assert choose(loadables) == []
        report = next(item for item in loadables if "structured" in item.warnings[0])
        with pytest.raises(LoadError, match=r"7: Axial \(structured report\): a structured report: no image to load"):
            load(db, report)


def test_images_of_two_sizes_offer_each_size_and_the_default_loads(tmp_path: Path) -> None:
    big = series_datasets(SPEC)
    small = series_datasets(SeriesSpec(slices=2, rows=6, cols=8, pixel_spacing=(1.4, 1.0), slice_spacing=2.5,
                                       origin=(1.0, 2.0, 10.5), series_uid=big[0].SeriesInstanceUID))
    for n, ds in enumerate(small):
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{ds.SOPInstanceUID[:50]}.9{n}"
    write_datasets(tmp_path / "in", big + small)
    db, loadables = examined(tmp_path, tmp_path / "in")
    with db:
        chosen = choose(loadables)
        assert sorted(len(item.instances) for item in chosen) == [2, 3]  # each size, not the unstackable whole
        whole = next(item for item in loadables if len(item.instances) == 5)
        assert not whole.selected and any("mixed image sizes" in w for w in whole.warnings)
        shapes = sorted(load(db, item)[0].array.shape for item in chosen)
    assert shapes == [(2, 6, 8), (3, 12, 16)]


def test_grey_and_colour_images_of_one_series_are_offered_apart(tmp_path: Path) -> None:
    grey_and_colour(tmp_path / "in")
    db, loadables = examined(tmp_path, tmp_path / "in")
    with db:
        chosen = choose(loadables)
        assert chosen and all(len(item.instances) == 3 for item in chosen)
        assert sorted(load(db, item)[0].array.ndim for item in chosen) == [3, 4]
        whole = next(item for item in loadables if len(item.instances) == 6)
        with pytest.raises(LoadError, match=r"grey and colour images \(16x12 MONOCHROME2, 16x12 RGB\) cannot be"):
            load(db, whole)  # asked for by number: refused, not loaded with the colour files "left out"


def test_cli_load_says_what_a_series_without_pixels_is(tmp_path: Path) -> None:
    from tests.test_cli import run

    write_datasets(tmp_path / "sr", [structured_report(SeriesSpec(series_number=7))])
    db = str(tmp_path / "db")
    assert run("--db", db, "import", str(tmp_path / "sr")).returncode == 0
    uid = structured_report(SeriesSpec(series_number=7)).SeriesInstanceUID
    out = run("--db", db, "load", uid, "-o", str(tmp_path / "x.nii"))
    assert out.returncode == 2 and "a structured report: no image to load" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "x.nii").exists()


def test_cli_load_writes_every_selected_loadable_numbered(tmp_path: Path) -> None:
    from tests.test_cli import run

    series_uid = grey_and_colour(tmp_path / "in")
    db = str(tmp_path / "db")
    assert run("--db", db, "import", str(tmp_path / "in")).returncode == 0
    out = run("--db", db, "load", series_uid, "-o", str(tmp_path / "x.nii.gz"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"wrote {tmp_path / 'x-1.nii.gz'}",
                                                       f"wrote {tmp_path / 'x-2.nii.gz'}"]
    assert all("(1: Axial (image " in line for line in lines)  # each says which loadable it is


# ---- item 9: Modality LUT Sequence -----------------------------------------------------------------------------

def test_a_modality_lut_sequence_replaces_rescale(tmp_path: Path) -> None:
    lut = [3 * v + 100 for v in range(1100)]  # stored 0…1099 → 100…3397; the phantom holds 0…1020 and 1000+10 k
    datasets = [with_modality_lut(ds, lut, first=0) for ds in series_datasets(SPEC)]
    paths = write_datasets(tmp_path / "in", datasets)
    volume = load_default(tmp_path, tmp_path / "in")
    want = expected_stack(paths, lambda ds: apply_modality_lut(ds.pixel_array, ds))
    assert np.array_equal(volume.array, want)
    assert int(volume.array[1, 6, 8]) == 3 * 1010 + 100  # not the stored 1010


# ---- item 10: 12-bit JPEG, and one bad file ------------------------------------------------------------------

@pytest.fixture
def without_pylibjpeg_for_12_bit_jpeg():
    """pydicom as a user without pylibjpeg-libjpeg has it (the issue's setup: Pillow and GDCM only), through
    pydicom's own plugin registry; restored afterwards."""
    from pydicom.pixels.decoders import JPEGExtended12BitDecoder

    had = "pylibjpeg" in JPEGExtended12BitDecoder.available_plugins
    if had:
        JPEGExtended12BitDecoder.remove_plugin("pylibjpeg")
    yield
    if had:
        JPEGExtended12BitDecoder.add_plugin("pylibjpeg", ("pydicom.pixels.decoders.pylibjpeg", "_decode_frame"))


def dcmdjpeg_reference(source: Path, tmp_path: Path) -> np.ndarray:
    import subprocess

    from tests.conftest import require_program

    dcmdjpeg = require_program("dcmdjpeg", "dcmtk")
    done = subprocess.run([dcmdjpeg, str(source), str(tmp_path / "plain.dcm")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return pydicom.dcmread(tmp_path / "plain.dcm").pixel_array


def test_gdcm_reads_12_bit_jpeg_as_dcmtk_does(tmp_path: Path) -> None:
    from dicomtui.core.pixels import read_gdcm

    source = shipped("JPGExtended.dcm")
    assert np.array_equal(read_gdcm(source), dcmdjpeg_reference(source, tmp_path))


def test_twelve_bit_jpeg_loads_when_pydicoms_backends_refuse_it(tmp_path: Path,
                                                                 without_pylibjpeg_for_12_bit_jpeg) -> None:
    """Pillow refuses 12-bit JPEG, pydicom's GDCM plugin too: GDCM's file reader decodes it as DCMTK does."""
    with pytest.raises(RuntimeError, match="12-bit"):
        pixel_array(pydicom.dcmread(shipped("JPGExtended.dcm")))
    volume, source = load_shipped(tmp_path, "JPGExtended.dcm")
    assert np.array_equal(volume.array[0], dcmdjpeg_reference(source, tmp_path))


def test_a_file_no_decoder_reads_is_left_out_by_name_and_the_others_load(tmp_path: Path) -> None:
    datasets = series_datasets(SeriesSpec(slices=5))
    undecodable(datasets[2])
    paths = write_datasets(tmp_path / "in", datasets)
    db, loadables = examined(tmp_path, tmp_path / "in")
    with db:
        (chosen,) = choose(loadables)
        (volume,) = load(db, chosen)
    assert volume.array.shape[0] == 4
    assert [int(volume.array[k, 32, 32]) for k in range(4)] == [1000 + 10 * k - 1024 for k in (0, 1, 3, 4)]
    left_out = [w for w in volume.warnings if w.startswith("left out")]
    assert len(left_out) == 1 and paths[2].name in left_out[0] and "cannot decode" in left_out[0]
    assert any("missing" in w for w in volume.warnings)  # the gap it leaves is said


# ---- item 11: truncated encapsulated Pixel Data ----------------------------------------------------------------

def test_truncated_encapsulated_pixel_data_is_said_to_be_truncated(tmp_path: Path) -> None:
    data = shipped("JPEG-lossy.dcm").read_bytes()
    assert data[-8:] == b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"  # the Sequence Delimitation Item ends the file
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "cut.dcm").write_bytes(data[:-8])
    db, loadables = examined(tmp_path, tmp_path / "in")
    with db:
        (chosen,) = choose(loadables)
        with pytest.raises(PixelError, match=r"cut\.dcm: truncated: the compressed Pixel Data ends without its "
                                             r"Sequence Delimitation Item"):
            load(db, chosen)


# ---- item 12: MONOCHROME1, VOI LUT Function, Presentation LUT Shape ----------------------------------------------

def test_monochrome1_and_inverse_are_inverted_after_windowing(tmp_path: Path) -> None:
    datasets = series_datasets(SPEC)
    for ds in datasets:
        ds.PhotometricInterpretation = "MONOCHROME1"
    write_datasets(tmp_path / "in", datasets)
    volume = load_default(tmp_path, tmp_path / "in")
    assert volume.photometric == "MONOCHROME1"
    pixels = np.array([[-100, 0, 100, 300]], dtype=np.int16)
    shown = display(pixels, 100, 200, volume.presentation)
    assert shown.tolist() == [[255, 255, 128, 0]]  # the lowest value white: 255 - the MONOCHROME2 grey
    assert display(pixels, 100, 200).tolist() == [[0, 0, 127, 255]]
    inverse = Presentation(presentation_lut_shape="INVERSE")
    assert display(pixels, 100, 200, inverse).tolist() == [[255, 255, 128, 0]]
    both = Presentation(photometric="MONOCHROME1", presentation_lut_shape="INVERSE")  # DX: one inversion, not two
    assert display(pixels, 100, 200, both).tolist() == [[255, 255, 128, 0]]


def test_voi_lut_function_sigmoid_and_presentation_lut_shape_are_read_and_applied(tmp_path: Path) -> None:
    from pydicom.pixels import apply_windowing

    datasets = series_datasets(SPEC)
    for ds in datasets:
        ds.VOILUTFunction = "SIGMOID"
        ds.PresentationLUTShape = "INVERSE"
        ds.RescaleIntercept = 0
    paths = write_datasets(tmp_path / "in", datasets)
    volume = load_default(tmp_path, tmp_path / "in")
    assert volume.presentation == Presentation("MONOCHROME2", "SIGMOID", "INVERSE")
    ds = pydicom.dcmread(paths[0])
    ds.WindowCenter, ds.WindowWidth = 500, 800
    values = np.arange(-200, 1400, 7, dtype=np.int16)[None, :]
    # pydicom's SIGMOID on the 16-bit signed range, scaled to 0-255, then inverted (INVERSE)
    reference = apply_windowing(values.astype(np.float64), ds)
    reference = 255 - (reference + 32768) / 65535 * 255
    ours = display(values, 500, 800, volume.presentation).astype(float)
    assert np.max(np.abs(ours - reference)) <= 1.0


@pytest.mark.parametrize("sop_class, modality, rows, what", [
    ("1.2.840.10008.5.1.4.1.1.88.22", "SR", None, "a structured report"),  # Enhanced SR
    ("1.2.840.10008.5.1.4.1.1.88.59", "KO", None, "a key object selection"),
    ("1.2.840.10008.5.1.4.1.1.481.3", "RTSTRUCT", None, "an RT structure set (not rasterised)"),
    ("1.2.840.10008.5.1.4.1.1.481.5", "RTPLAN", None, "an RT plan"),
    ("1.2.840.10008.5.1.4.1.1.9.1.1", "ECG", None, "a waveform"),  # 12-lead ECG
    ("1.2.840.10008.5.1.4.1.1.11.1", "PR", None, "a presentation state"),
    ("1.2.840.10008.5.1.4.1.1.104.1", "DOC", None, "an encapsulated document"),  # PDF
    ("1.2.840.10008.5.1.4.1.1.2", "CT", 512, "an image without Pixel Data"),
    ("1.2.3.4", "SR", None, "a structured report"),  # a private class: the Modality says it
    ("1.2.3.4", "OT", None, "an object without pixel data"),
])
def test_what_an_object_without_pixels_is(sop_class: str, modality: str, rows: int | None, what: str) -> None:
    from dicomtui.core.examine.nonimage import what_it_is

    assert what_it_is({"SOPClassUID": sop_class, "Modality": modality, "Rows": rows}) == what
