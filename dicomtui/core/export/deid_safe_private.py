"""Retain Safe Private (PS3.15 E.3.10): the private attributes a de-identification may keep.

The list is PS3.15 Table E.3.10-1 ("Safe Private Attributes", the edition with CP-1672's additions), restricted by
the approach of that section's Note 2: only numeric values (US, SS, UL, SL, FL, FD; IS and DS when they hold only
numeric characters) and code strings (CS) are kept. The table's LO, SH, LT, UI, OB and SQ rows are left out: free
text and bulk binary may carry identity (Note 2), and a private UI would keep an original UID that the mapping
never replaces. No maintained Python library carries this table (dicom-anonymizer, dicognito and deid have none),
so the rows are written here, one line per private block, by hand.

Keys are (Private Creator, group, element low byte): (gggg,xxee) of the table, xx the block the creator reserves.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["SAFE_PRIVATE", "SAFE_VRS", "is_safe_private_value"]

SAFE_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "IS", "DS", "CS"})

_ROWS: tuple[tuple[str, int, dict[int, str]], ...] = (  # (creator, group, {element: VR as the table gives it})
    ("Philips PET Private Group", 0x7053, {0x00: "DS", 0x09: "DS"}),  # SUV factor, activity concentration factor
    ("ELSCINT1", 0x00E1, {0x21: "DS", 0x50: "DS"}),  # DLP, acquisition duration
    ("ELSCINT1", 0x01E1, {0x26: "CS"}),  # phantom type
    ("ELSCINT1", 0x01F1, {0x01: "CS", 0x07: "DS", 0x26: "DS", 0x27: "DS"}),  # acq. type, table velocity, pitch, rot.
    ("GEMS_ACQU_01", 0x0019, {0x23: "DS", 0x24: "DS", 0x27: "DS"}),  # table speed, mid scan time, rotation speed
    ("GEMS_PARM_01", 0x0043, {0x39: "IS", 0x6F: "DS"}),  # b-value (1st value), table entry + gradient coil
    ("GEMS_HELIOS_01", 0x0045, {0x01: "SS", 0x02: "FL"}),  # macro rows in detector, macro width at iso centre
    ("GEIIS PACS", 0x0903, {0x10: "US", 0x11: "US", 0x12: "US"}),  # reject, significant, confidential flags
    ("Philips Imaging DD 001", 0x2001, {0x03: "FL", 0x04: "CS"}),  # diffusion b-factor, direction
    ("Philips MR Imaging DD 001", 0x2005, {0x0D: "FL", 0x0E: "FL"}),  # scale intercept, scale slope
    ("SIEMENS MR HEADER", 0x0019, {0x0C: "IS", 0x0D: "CS", 0x0E: "FD", 0x27: "FD"}),  # b-value, diffusion, b-matrix
    ("GEMS_SERS_01", 0x0025, {0x07: "SL"}),  # images in series
    ("NQHeader", 0x0099, {0x04: "SS", 0x10: "FL", 0x21: "FL"}),  # return code, MI, ICV
    ("NQLeft", 0x0199, dict.fromkeys(range(0x01, 0x17), "FL")),  # left brain structure volumes
    ("NQRight", 0x0299, dict.fromkeys(range(0x01, 0x17), "FL")),  # right brain structure volumes
    ("SIEMENS Ultrasound SC2000", 0x0119, {0x05: "UL", 0x06: "UL", 0x07: "UL", 0x08: "UL", 0x09: "SS", 0x13: "IS"}),
    ("SIEMENS Ultrasound SC2000", 0x0129, {0x30: "CS"}),  # raw data object type
    ("SIEMENS Ultrasound SC2000", 0x0139, {0x01: "SL"}),  # physio capture ROI
    ("SIEMENS Ultrasound SC2000", 0x0149, {0x01: "FD", 0x02: "FD", 0x03: "FD"}),  # BROI points, timestamps
)

SAFE_PRIVATE: dict[tuple[str, int, int], str] = {
    (creator, group, element): vr for creator, group, elements in _ROWS for element, vr in elements.items()}

_NUMERIC_TEXT = re.compile(r"^[\s0-9+\-.eE\\]*$")  # IS / DS values, several separated by backslashes


def is_safe_private_value(vr: str, value: Any) -> bool:
    """Whether a private value of ``vr`` (as read: a VR of :data:`SAFE_VRS`, or UN) may be kept: numbers, and IS /
    DS strings of numeric characters only (PS3.15 E.3.10 Note 2)."""
    if vr not in SAFE_VRS and vr != "UN":
        return False
    if vr in ("IS", "DS"):
        values = [value] if isinstance(value, str) or not hasattr(value, "__iter__") else list(value)
        return all(_NUMERIC_TEXT.match(str(v)) for v in values)
    return True
