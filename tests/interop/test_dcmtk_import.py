"""Files written by DCMTK (another encoder than pydicom) import with the values DCMTK itself reads from them.

DCMTK converts a generated series into every encoding we claim to read (explicit/implicit little endian, big
endian, deflate, JPEG lossless, RLE); ``dcmdump`` is the reference for the stored attributes; ``dcmmkdir`` makes
real DICOMDIRs (renamed entries, renamed index, unlisted folders: issue 12); copies in storage are byte-identical to
the originals.
"""

from __future__ import annotations

import filecmp
import re
import subprocess
from pathlib import Path

import pytest

from dicomtui.core.database import DicomDatabase
from dicomtui.core.indexer import import_paths
from dicomtui.core.levels import ImportMode
from dicomtui.core.synth import SeriesSpec, write_series
from tests.conftest import require_program

# keyword -> tag, compared between our database row and dcmdump's output
COMPARED = {
    "ImagePositionPatient": "0020,0032", "ImageOrientationPatient": "0020,0037", "PixelSpacing": "0028,0030",
    "Rows": "0028,0010", "Columns": "0028,0011", "BitsAllocated": "0028,0100", "PixelRepresentation": "0028,0103",
    "ImageType": "0008,0008", "SOPInstanceUID": "0008,0018", "InstanceNumber": "0020,0013",
    "RescaleIntercept": "0028,1052", "WindowCenter": "0028,1050", "SliceThickness": "0018,0050",
}
ENCODINGS = {
    "explicit": ["dcmconv", "+te"], "implicit": ["dcmconv", "+ti"], "bigendian": ["dcmconv", "+tb"],
    "deflate": ["dcmconv", "+td"], "jpeg-lossless": ["dcmcjpeg"], "rle": ["dcmcrle"],
}


def dcmdump_values(path: Path) -> dict[str, str]:
    args = ["dcmdump", "-q"]
    for tag in COMPARED.values():
        args += ["+P", tag]
    out = subprocess.run([*args, str(path)], capture_output=True, text=True, check=True).stdout
    by_tag = {}
    for line in out.splitlines():
        m = re.match(r"\((\w{4},\w{4})\) \w\w (?:\[(.*?)\]|(\S+))\s+#", line)
        if m:
            by_tag[m.group(1).upper()] = m.group(2) if m.group(2) is not None else m.group(3)
    return {kw: by_tag[tag.upper()] for kw, tag in COMPARED.items() if tag.upper() in by_tag}


def _as_text(value) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


@pytest.mark.interop
@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_dcmtk_encoded_files_import_with_dcmtk_values(tmp_path: Path, encoding: str) -> None:
    tool = ENCODINGS[encoding]
    require_program(tool[0], "dcmtk")
    require_program("dcmdump", "dcmtk")
    originals = write_series(tmp_path / "orig", SeriesSpec(slices=4))
    folder = tmp_path / encoding
    folder.mkdir()
    for src in originals:
        subprocess.run([*tool, str(src), str(folder / src.name)], check=True, capture_output=True)
    with DicomDatabase.open(tmp_path / "db") as db:
        report = import_paths(db, [folder], ImportMode.COPY)
        assert report.instances_added == 4 and not report.rejected, report.rejected
        for row in db.instances():
            reference = dcmdump_values(Path(row["source_path"]))
            ours = {kw: row[kw] for kw in reference}
            for kw, ref in reference.items():
                if kw in ("Rows", "Columns", "BitsAllocated", "PixelRepresentation", "InstanceNumber"):
                    assert ours[kw] == int(ref), kw
                elif kw in ("RescaleIntercept", "SliceThickness"):
                    assert ours[kw] == pytest.approx(float(ref)), kw
                else:
                    assert ours[kw] == ref, kw
            stored = db.abspath(row["path"], True)
            assert filecmp.cmp(stored, row["source_path"], shallow=False)  # stored as received, byte for byte
            native = encoding in ("explicit", "implicit")
            assert (row["pixel_offset"] is not None) == native


@pytest.mark.interop
def test_dicomdir_made_by_dcmmkdir(tmp_path: Path) -> None:
    require_program("dcmmkdir", "dcmtk")
    media = tmp_path / "media"
    write_series(media / "SER1", SeriesSpec(slices=3), name="IM{index:05d}")
    write_series(media / "SER2", SeriesSpec(slices=2, series_number=2), name="IM{index:05d}")
    subprocess.run(["dcmmkdir", "+r", "+id", str(media), "--output-file", str(media / "DICOMDIR")],
                   check=True, capture_output=True, cwd=media)
    write_series(media / "NOTLISTED", SeriesSpec(slices=2, series_number=3), name="IM{index:05d}")
    with DicomDatabase.open(tmp_path / "db") as db:
        report = import_paths(db, [media], ImportMode.LINK)
        # issue 12: what the DICOMDIR does not list is imported too, counted and named
        assert report.instances_added == 7 and not report.rejected
        assert {r["SeriesNumber"] for r in db.series()} == {1, 2, 3}
        assert report.outside_dicomdir == 2
        assert [w.reason for w in report.warnings] == [
            "2 files in its folder not listed in this DICOMDIR: read too (NOTLISTED/ (2 files))"]


def _dcmmkdir_media(tmp_path: Path) -> Path:
    """Five images in two series and a DICOMDIR made by DCMTK's dcmmkdir (upper-case IDs without extension)."""
    media = tmp_path / "media"
    write_series(media / "SER1", SeriesSpec(slices=3), name="IM{index:05d}")
    write_series(media / "SER2", SeriesSpec(slices=2, series_number=2), name="IM{index:05d}")
    subprocess.run(["dcmmkdir", "+r", "+id", str(media), "--output-file", str(media / "DICOMDIR")],
                   check=True, capture_output=True, cwd=media)
    return media


@pytest.mark.interop
def test_dcmmkdir_entries_find_files_renamed_lower_case_with_an_extension(tmp_path: Path) -> None:
    """A CD copied by a tool that lower-cases names and adds ".dcm": every DICOMDIR entry still finds its file
    (main: 0 of 5 imported through the DICOMDIR, 5 "referenced by DICOMDIR but missing")."""
    require_program("dcmmkdir", "dcmtk")
    media = _dcmmkdir_media(tmp_path)
    for image in [p for p in media.rglob("IM*") if p.is_file()]:
        image.rename(image.with_name(image.name.lower() + ".dcm"))
    for folder in [p for p in media.iterdir() if p.is_dir()]:
        folder.rename(folder.with_name(folder.name.lower()))
    with DicomDatabase.open(tmp_path / "db") as db:
        report = import_paths(db, [media / "DICOMDIR"], ImportMode.LINK)
        assert report.instances_added == 5 and not report.rejected


@pytest.mark.interop
def test_a_dcmmkdir_index_under_another_name_is_named_as_such(tmp_path: Path) -> None:
    """dcmmkdir's DICOMDIR saved as INDEX.DCM: named a DICOMDIR index (main: "no StudyInstanceUID")."""
    require_program("dcmmkdir", "dcmtk")
    media = _dcmmkdir_media(tmp_path)
    (media / "DICOMDIR").rename(media / "INDEX.DCM")
    with DicomDatabase.open(tmp_path / "db") as db:
        report = import_paths(db, [media], ImportMode.LINK)
        assert report.instances_added == 5
        assert [(Path(p.path).name, p.reason) for p in report.rejected] == [
            ("INDEX.DCM", "a DICOMDIR index (media storage directory), not an image: its folder is scanned")]


LOSSLESS = {"jpeg-lossless": ["dcmcjpeg"], "jpeg-ls": ["dcmcjpls"], "rle": ["dcmcrle"], "deflate": ["dcmconv", "+td"],
            "bigendian": ["dcmconv", "+tb"]}


@pytest.mark.interop
@pytest.mark.parametrize("codec", sorted(LOSSLESS))
def test_lossless_encodings_load_with_identical_voxels(tmp_path: Path, codec: str) -> None:
    """DCMTK compresses a series; loading it gives exactly the voxels of the uncompressed original."""
    import numpy as np

    from dicomtui.core.examine import examine_series, load

    tool = LOSSLESS[codec]
    require_program(tool[0], "dcmtk")
    originals = write_series(tmp_path / "orig", SeriesSpec(slices=5, rows=24, cols=32, modality="MR"))
    folder = tmp_path / codec
    folder.mkdir()
    for src in originals:
        subprocess.run([*tool, str(src), str(folder / src.name)], check=True, capture_output=True)
    volumes = []
    for source in (tmp_path / "orig", folder):
        with DicomDatabase.open(tmp_path / f"db-{source.name}") as db:
            import_paths(db, [source])
            (item,) = examine_series(db, [db.series()[0]["id"]])
            volumes += load(db, item)
    assert volumes[0].array.dtype == volumes[1].array.dtype
    assert np.array_equal(volumes[0].array, volumes[1].array)
    np.testing.assert_allclose(volumes[0].affine, volumes[1].affine)
