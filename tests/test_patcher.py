"""The DICOM patcher: given a folder of broken files (generated, one damage each), each rule's fix is what the
standard says, the source is never touched, and the patched folder imports and loads where the original did not."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dicomtui.core.errors import PatchError
from dicomtui.core.patcher import RULES, patch
from dicomtui.core.patcher_rules import normal_date
from dicomtui.core.tags import uid_problem

from . import patcher_fixtures as fx

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # the fixtures write invalid values on purpose


def read(path: Path) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


def changes_of(report, name: str) -> list[tuple[str, str]]:
    (found,) = [f for f in report.files if f.source == name]
    return found.changes


def test_missing_ids_are_generated_one_series_uid_per_series_one_study_per_patient_folder(tmp_path: Path) -> None:
    fx.missing_ids(tmp_path / "src")
    report = patch(tmp_path / "src", tmp_path / "out", ["ids", "meta"])
    out = {p.relative_to(tmp_path / "out").as_posix(): read(p) for p in (tmp_path / "out").rglob("*.dcm")}
    assert len(out) == 5
    s1 = [ds for name, ds in out.items() if "/s1/" in name]
    s2 = [ds for name, ds in out.items() if "/s2/" in name]
    assert len({ds.SeriesInstanceUID for ds in s1}) == 1 and len({ds.SeriesInstanceUID for ds in s2}) == 1
    assert s1[0].SeriesInstanceUID != s2[0].SeriesInstanceUID
    assert len({ds.StudyInstanceUID for ds in out.values()}) == 1  # one patient folder: PatientA
    assert len({ds.SOPInstanceUID for ds in out.values()}) == 5
    for ds in out.values():
        assert ds.PatientID == "PatientA" and str(ds.PatientName) == "PatientA"
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert not any(uid_problem(str(ds[k].value)) for k in ("StudyInstanceUID", "SeriesInstanceUID",
                                                                "SOPInstanceUID"))
    said = [c for rule, c in changes_of(report, "PatientA/s1/IM0.dcm") if rule == "ids"]
    assert "PatientID was missing: 'PatientA' (the patient folder's name)" in said
    # patching the same folder again gives the same UIDs (derived, not random)
    again = patch(tmp_path / "src", tmp_path / "out2", ["ids", "meta"])
    assert read(tmp_path / "out2/PatientA/s1/IM0.dcm").SeriesInstanceUID == s1[0].SeriesInstanceUID
    assert again.rule_counts() == report.rule_counts()


def test_files_without_meta_or_preamble_get_a_part10_header(tmp_path: Path) -> None:
    files = fx.bare_implicit(tmp_path / "src")
    assert files[0].read_bytes()[128:132] != b"DICM"
    report = patch(tmp_path / "src", tmp_path / "out", ["meta"])
    for path in files:
        written = tmp_path / "out" / path.name
        assert written.read_bytes()[128:132] == b"DICM"
        ds = read(written)
        assert ds.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian  # what the data set is encoded in
        assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert any("TransferSyntaxUID was missing" in c for _, c in changes_of(report, "bare0"))


def test_missing_slice_thickness_comes_from_the_positions(tmp_path: Path) -> None:
    fx.no_thickness(tmp_path / "src" / "ct", spacing=2.5)
    fx.no_thickness(tmp_path / "src" / "mr", modality="MR", spacing=1.5)
    fx.no_thickness(tmp_path / "src" / "uneven", positions=[(0, 0, 0), (0, 0, 2), (0, 0, 5), (0, 0, 6)])
    report = patch(tmp_path / "src", tmp_path / "out", ["spacing"])
    ct, mr, uneven = (read(tmp_path / "out" / f / "IM1.dcm") for f in ("ct", "mr", "uneven"))
    assert float(ct.SliceThickness) == 2.5 and "SpacingBetweenSlices" not in ct  # not in the CT Image IOD
    assert float(mr.SliceThickness) == 1.5 and float(mr.SpacingBetweenSlices) == 1.5
    assert "SliceThickness" not in uneven
    assert changes_of(report, "uneven/IM1.dcm") == [
        ("spacing", "SliceThickness not set: the slices are not evenly spaced (1 to 3 mm)")]


def test_a_fake_multiframe_ct_is_split_into_one_file_per_frame_with_positions(tmp_path: Path) -> None:
    frames = fx.fake_multiframe(tmp_path / "src" / "mf.dcm", frames=3, thickness=2.5)
    original = read(tmp_path / "src" / "mf.dcm")
    report = patch(tmp_path / "src", tmp_path / "out", ["split"])
    assert report.files[0].outputs == ["mf_0001.dcm", "mf_0002.dcm", "mf_0003.dcm"]
    parts = [read(tmp_path / "out" / name) for name in report.files[0].outputs]
    for index, ds in enumerate(parts):
        assert "NumberOfFrames" not in ds
        np.testing.assert_array_equal(ds.pixel_array, frames[index])
        expected = np.array([float(v) for v in original.ImagePositionPatient]) + [0, 0, 2.5 * index]
        np.testing.assert_allclose([float(v) for v in ds.ImagePositionPatient], expected)
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.SeriesInstanceUID == original.SeriesInstanceUID
    assert len({ds.SOPInstanceUID for ds in parts}) == 3 and original.SOPInstanceUID not in {
        ds.SOPInstanceUID for ds in parts}
    assert [ds.InstanceNumber for ds in parts] == [1, 2, 3]


def test_big_endian_and_deflated_become_explicit_little_endian_with_the_same_pixels(tmp_path: Path) -> None:
    big = fx.big_endian(tmp_path / "src" / "be.dcm")
    deflated = fx.deflated(tmp_path / "src" / "deflated.dcm")
    report = patch(tmp_path / "src", tmp_path / "out", ["syntax"])
    for name, pixels in (("be.dcm", big), ("deflated.dcm", deflated)):
        ds = read(tmp_path / "out" / name)
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        np.testing.assert_array_equal(ds.pixel_array, pixels)
        assert ds.Rows == 16 and float(ds.SliceThickness) == 2.0  # numbers re-encoded, not byte-copied
    assert changes_of(report, "be.dcm") == [
        ("syntax", "Explicit VR Big Endian (1.2.840.10008.1.2.2) → Explicit VR Little Endian")]


def test_a_private_transfer_syntax_pydicom_reads_is_converted(tmp_path: Path) -> None:
    ds = fx.datasets(1)[0]
    pixels = ds.pixel_array.copy()
    ds.file_meta.TransferSyntaxUID = "1.3.46.670589.33.1.4.1"  # a vendor's private explicit little endian
    (tmp_path / "src").mkdir()
    ds.save_as(tmp_path / "src" / "private.dcm", implicit_vr=False, little_endian=True)
    report = patch(tmp_path / "src", tmp_path / "out", ["syntax"])
    out = read(tmp_path / "out" / "private.dcm")
    assert out.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    np.testing.assert_array_equal(out.pixel_array, pixels)
    assert "a private transfer syntax" in changes_of(report, "private.dcm")[0][1]


def test_invalid_uids_are_replaced_consistently_and_dates_normalised(tmp_path: Path) -> None:
    bad, long = fx.bad_uids_and_dates(tmp_path / "src")
    report = patch(tmp_path / "src", tmp_path / "out", ["uids", "dates"])
    one, two = read(tmp_path / "out" / "one.dcm"), read(tmp_path / "out" / "two.dcm")
    assert not uid_problem(one.SOPInstanceUID) and one.SOPInstanceUID != bad
    assert one.file_meta.MediaStorageSOPInstanceUID == one.SOPInstanceUID
    assert two.SourceImageSequence[0].ReferencedSOPInstanceUID == one.SOPInstanceUID  # the reference follows
    assert one.FrameOfReferenceUID == two.FrameOfReferenceUID and not uid_problem(one.FrameOfReferenceUID)
    assert one.SOPClassUID == two.SOPClassUID  # definition UIDs are never replaced
    assert (one.StudyDate, one.SeriesDate, one.ContentDate) == ("20200102", "20200102", "")
    assert "ContentDate" in one  # the Type 2 attribute stays, empty
    assert two.PatientBirthDate == "19700101"
    said = [c for _, c in changes_of(report, "one.dcm")]
    assert "ContentDate '20201301' is not a date: its value was removed" in said
    assert any(c.startswith(f"SOPInstanceUID {bad!r} is not a valid UID (PS3.5 9.1: characters other than digits")
               for c in said)
    assert any(c.startswith(f"FrameOfReferenceUID {long!r} is not a valid UID (PS3.5 9.1: 68 characters")
               for _, c in changes_of(report, "two.dcm"))


@pytest.mark.parametrize(("text", "expected"), [
    ("2020.01.02", "20200102"), ("2020-01-02", "20200102"), ("20200102 ", "20200102"), ("2020/01/02", "20200102"),
    ("20200230", None), ("yesterday", None), ("2020", None), ("20200102", "20200102")])
def test_normal_date(text: str, expected: str | None) -> None:
    assert normal_date(text) == expected


def test_non_dicom_and_cut_files_are_skipped_with_the_reason_and_the_rest_goes_on(tmp_path: Path) -> None:
    fx.no_thickness(tmp_path / "src")
    (tmp_path / "src" / "notes.txt").write_text("not an image\n" * 20)
    data = (tmp_path / "src" / "IM0.dcm").read_bytes()
    (tmp_path / "src" / "cut.dcm").write_bytes(data[:700])
    (tmp_path / "src" / "pixels_cut.dcm").write_bytes(data[:-100])
    report = patch(tmp_path / "src", tmp_path / "out")
    reasons = {s.path: s.reason for s in report.skipped}
    assert reasons["notes.txt"].startswith("not a DICOM file")
    assert reasons["cut.dcm"] == "truncated: the file ends inside a data element"  # the import's words
    assert reasons["pixels_cut.dcm"] == "damaged: the file ends inside (7FE0,0010) (412 of 512 bytes)"
    assert sorted(f.source for f in report.files) == [f"IM{i}.dcm" for i in range(4)]
    assert not (tmp_path / "out" / "cut.dcm").exists() and not (tmp_path / "out" / "notes.txt").exists()
    assert "3 files skipped" in report.summary()


def test_unchanged_files_are_copied_byte_for_byte_and_the_source_is_never_touched(tmp_path: Path) -> None:
    fx.no_thickness(tmp_path / "src")
    before = {p.name: p.read_bytes() for p in (tmp_path / "src").iterdir()}
    report = patch(tmp_path / "src", tmp_path / "out", ["uids", "dates"])
    assert not report.changed and report.files
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before
    assert {p.name: p.read_bytes() for p in (tmp_path / "src").iterdir()} == before


def test_dry_run_writes_nothing_and_reports_the_same(tmp_path: Path) -> None:
    fx.missing_ids(tmp_path / "src")
    report = patch(tmp_path / "src", tmp_path / "out", dry_run=True)
    assert not (tmp_path / "out").exists()
    assert report.summary().startswith("Would write 5 files") and len(report.changed) == 5


def test_the_destination_must_be_new_or_empty_and_outside_the_source(tmp_path: Path) -> None:
    fx.no_thickness(tmp_path / "src")
    with pytest.raises(PatchError, match="never in place"):
        patch(tmp_path / "src", tmp_path / "src" / "fixed")
    with pytest.raises(PatchError, match="never in place"):
        patch(tmp_path / "src", tmp_path / "src")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(PatchError, match="not an empty folder"):
        patch(tmp_path / "src", tmp_path / "full")
    with pytest.raises(PatchError, match="no patcher rule 'spacin'"):
        patch(tmp_path / "src", tmp_path / "out", ["spacin"])
    with pytest.raises(PatchError, match="is not a folder"):
        patch(tmp_path / "nothing", tmp_path / "out")


def test_cancel_stops_between_files(tmp_path: Path) -> None:
    import threading

    fx.no_thickness(tmp_path / "src")
    cancel = threading.Event()
    seen = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        cancel.set()

    report = patch(tmp_path / "src", tmp_path / "out", progress=progress, cancel=cancel)
    assert report.cancelled and len(report.files) == 1 and seen == [(1, 4)]
    assert "Cancelled" in report.summary()


def test_rules_run_in_their_order_whatever_order_they_are_asked_in(tmp_path: Path) -> None:
    fx.missing_ids(tmp_path / "src")
    report = patch(tmp_path / "src", tmp_path / "out", ["meta", "ids"])
    assert report.rules == ["ids", "meta"] and list(RULES)[-1] == "split"
    assert report.to_dict()["rule_counts"] == {"ids": 5, "meta": 5}


def test_the_patched_folder_imports_cleanly_and_every_series_loads(tmp_path: Path) -> None:
    """Before: the import rejects the files without UIDs and examine reads the fake multi-frame CT as 3 doubtful
    repeats; after: nothing is rejected and every series is one clean default loadable that loads (the split one
    as a 3-slice volume)."""
    from dicomtui.core.database import DicomDatabase
    from dicomtui.core.examine import examine_and_load, examine_series
    from dicomtui.core.indexer import import_paths
    from dicomtui.core.patcher import import_patched

    fx.missing_ids(tmp_path / "src")
    fx.fake_multiframe(tmp_path / "src" / "PatientB" / "mf.dcm", frames=3, thickness=2.5, patient_id="B", seed=2)
    with DicomDatabase.open(tmp_path / "db-before") as db:
        before = import_paths(db, [tmp_path / "src"], "copy")
        (fake,) = db.series()  # the only series imported: the fake multi-frame CT
        loadables = examine_series(db, [fake["id"]])
    assert len(before.rejected) == 5
    assert all("no StudyInstanceUID / SeriesInstanceUID / SOPInstanceUID" in p.reason for p in before.rejected)
    assert len(loadables) == 3 and all(item.warnings for item in loadables)  # "3 frames repeat 2 positions…"

    report = patch(tmp_path / "src", tmp_path / "out")
    with DicomDatabase.open(tmp_path / "db-after") as db:
        after = import_patched(db, report)
        assert not after.rejected and not after.warnings
        series = db.series()
        assert len(series) == 3
        shapes = []
        for row in series:
            (clean,) = examine_series(db, [row["id"]])
            assert clean.selected and not clean.warnings
            loaded = examine_and_load(db, [row["id"]], strict=True)
            (result,) = loaded.loaded
            (volume,) = result.volumes
            shapes.append(volume.array.shape)
    assert sorted(shapes) == [(2, 16, 16), (3, 16, 16), (3, 16, 16)]


def _dciodvfy_errors(program: str, path: Path) -> set[str]:
    import subprocess

    result = subprocess.run([program, str(path)], capture_output=True, text=True, check=False)
    return {line.strip() for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")}


def test_dciodvfy_reports_no_new_error_on_the_patched_files_and_fewer_on_the_broken_ones(tmp_path: Path) -> None:
    from .conftest import require_program

    dciodvfy = require_program("dciodvfy", "dicom3tools")
    fx.bad_uids_and_dates(tmp_path / "src" / "bad")
    fx.bare_implicit(tmp_path / "src" / "bare", 1)
    fx.missing_ids(tmp_path / "src" / "ids")
    fx.no_thickness(tmp_path / "src" / "mr", modality="MR")
    fx.big_endian(tmp_path / "src" / "be" / "be.dcm")
    fx.fake_multiframe(tmp_path / "src" / "mf" / "mf.dcm")
    report = patch(tmp_path / "src", tmp_path / "out")
    assert not report.skipped
    fixed = 0
    for f in report.files:
        before = _dciodvfy_errors(dciodvfy, tmp_path / "src" / f.source)
        for output in f.outputs:
            after = _dciodvfy_errors(dciodvfy, tmp_path / "out" / output)
            assert after <= before, f"{output}: new errors {sorted(after - before)}"
            fixed += len(after) < len(before)
    assert fixed >= 8  # bad/one, bad/two, 5 × ids, the 3 frames of mf (NumberOfFrames is not in the CT IOD)


def test_a_split_frame_never_overwrites_a_file_of_the_source_with_its_name(tmp_path: Path) -> None:
    fx.fake_multiframe(tmp_path / "src" / "mf.dcm", frames=3)
    fx.no_thickness(tmp_path / "other")
    (tmp_path / "other" / "IM0.dcm").rename(tmp_path / "src" / "mf_0002.dcm")
    report = patch(tmp_path / "src", tmp_path / "out", ["split"])
    assert [s.path for s in report.skipped] == ["mf_0002.dcm"]
    assert report.skipped[0].reason.startswith("not written (FileExistsError: mf_0002.dcm was written already")
    other = read(tmp_path / "src" / "mf_0002.dcm").SOPInstanceUID
    assert read(tmp_path / "out" / "mf_0002.dcm").SOPInstanceUID != other  # the frame stays, not replaced


def test_files_of_two_patients_in_one_folder_get_a_study_each(tmp_path: Path) -> None:
    for patient in ("P1", "P2"):
        for i, ds in enumerate(fx.datasets(2, patient_id=patient)):
            fx.without(ds, "StudyInstanceUID", "SeriesInstanceUID")
            fx.write(ds, tmp_path / "src" / "mixed" / f"{patient}_{i}.dcm")
    patch(tmp_path / "src", tmp_path / "out", ["ids"])
    p1a, p1b, p2a, p2b = (read(p) for p in sorted((tmp_path / "out" / "mixed").iterdir()))
    assert p1a.StudyInstanceUID == p1b.StudyInstanceUID != p2a.StudyInstanceUID == p2b.StudyInstanceUID
    # one folder, one SeriesNumber and description, yet two series: a series never spans studies
    assert p1a.SeriesInstanceUID == p1b.SeriesInstanceUID != p2a.SeriesInstanceUID == p2b.SeriesInstanceUID
