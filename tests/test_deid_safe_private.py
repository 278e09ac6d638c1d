"""Retain Safe Private against PS3.15 Table E.3.10-1: the table's numeric and code-string rows are kept with their
Private Creator (also a creator padded with a space); its free-text, UID and bulk rows, a numeric row holding
letters, unknown creators and everything without the option are removed."""

from __future__ import annotations

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from dicomtui.core.export.deid_safe_private import SAFE_PRIVATE, SAFE_VRS
from dicomtui.core.export.deidentify import Deidentifier, DeidOptions


def _private_dataset() -> Dataset:
    ds = Dataset()
    ds.PatientID, ds.SOPInstanceUID, ds.Modality = "P1", "1.2.3.4", "CT"
    acquisition = ds.private_block(0x0019, "GEMS_ACQU_01", create=True)
    acquisition.add_new(0x23, "DS", "12.5")  # table speed: in the table, numeric
    acquisition.add_new(0x9E, "LO", "PULSE Smith")  # internal pulse sequence name: in the table, but LO
    neuroquant = ds.private_block(0x0099, "NQHeader", create=True)
    neuroquant.add_new(0x02, "UI", "1.2.3.999")  # analyzed series UID: in the table, but a UID never remapped
    neuroquant.add_new(0x10, "FL", 0.75)  # MI
    pet = ds.private_block(0x7053, "Philips PET Private Group", create=True)
    pet.add_new(0x00, "DS", "0.0012")  # SUV factor
    # a numeric row holding letters, as read from a file (pydicom decodes it on first use)
    ds[0x70531009] = RawDataElement(Tag(0x70531009), "DS", 8, b"Jones 3 ", 0, False, True)
    ds.add_new(0x00290010, "LO", "SIEMENS MR HEADER ")  # a creator padded with a space (as LO values often are)
    ds.add_new(0x0029100C, "IS", "800")  # its block's 0x0C in group 0x0029: not a row (the table's is 0x0019)
    ds.private_block(0x0011, "ACME PRIVATE", create=True).add_new(0x01, "DS", "1")
    return ds


def test_the_numeric_rows_of_table_e3_10_1_are_kept_and_the_rest_removed() -> None:
    ds = Deidentifier(DeidOptions(retain_safe_private=True))(_private_dataset())
    assert ds is not None
    assert ds.private_block(0x0019, "GEMS_ACQU_01")[0x23].value == "12.5"
    assert (0x0019, 0x109E) not in ds
    assert ds.private_block(0x0099, "NQHeader")[0x10].value == 0.75 and (0x0099, 0x1002) not in ds
    assert ds.private_block(0x7053, "Philips PET Private Group")[0x00].value == "0.0012"
    assert (0x7053, 0x1009) not in ds
    assert not any(elem.tag.group in (0x0011, 0x0029) for elem in ds)  # unknown creator, a row of another group
    without = Deidentifier(DeidOptions())(_private_dataset())
    assert without is not None and not any(elem.tag.is_private for elem in without)


def test_every_row_kept_is_numeric_or_a_code_string_with_a_private_creator() -> None:
    assert set(SAFE_PRIVATE.values()) <= SAFE_VRS
    assert all(group % 2 == 1 and 0 <= element <= 0xFF and creator.strip() == creator
               for creator, group, element in SAFE_PRIVATE)
    first_version = [("SIEMENS MR HEADER", 0x0019, e) for e in (0x0C, 0x0D, 0x0E, 0x27)] + [
        ("GEMS_PARM_01", 0x0043, 0x39), ("Philips Imaging DD 001", 0x2001, 0x03),
        ("Philips MR Imaging DD 001", 0x2005, 0x0E)]
    assert all(row in SAFE_PRIVATE for row in first_version)  # every row of the first list is in the table
