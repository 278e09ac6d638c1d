"""Siemens CSA headers: the private (0029,xx10) "CSA Image Header Info" and (0029,xx20) "CSA Series Header Info"
of private creator "SIEMENS CSA HEADER", where Siemens MR keeps what a mosaic needs (NumberOfImagesInMosaic,
SliceNormalVector) and the diffusion encoding (B_value, DiffusionGradientDirection).

Written by hand (about 60 lines) rather than making nibabel a run-time dependency for it: the format is two
fixed structs, the reader runs once per mosaic at import, and tests check it against ``nibabel.nicom.csareader``
on nibabel's Siemens files. Layout (nibabel's csareader, dcm2niix's nii_dicom.c): CSA2 starts "SV10" + 4 bytes;
then uint32 tag count and uint32 77; each tag is a 64-byte name, int32 VM, 4-byte VR, int32 SyngoDT, int32 item
count, int32 77/205; each item is four int32 (the second its length in CSA2, the first minus the first tag's item
count in CSA1) and its text, padded to 4 bytes.
"""

from __future__ import annotations

import struct
from typing import Any

CREATOR = "SIEMENS CSA HEADER"
MAX_ITEMS = 1000  # nibabel's bound: more items than this is a corrupt header, not a big one
_NUMBERS = {"FL": float, "FD": float, "DS": float, "IS": int, "SL": int, "SS": int, "UL": int, "US": int}


def read_csa(data: bytes) -> dict[str, list[Any]]:
    """The tags of one CSA header: name → values (numbers for numeric VRs, else text), at most VM of them (all the
    non-empty ones when VM is 0). Raises ValueError when the bytes are not a CSA header or are cut short."""
    csa2 = data[:4] == b"SV10"
    pos = 8 if csa2 else 0
    try:
        count, check = struct.unpack_from("<2I", data, pos)
        pos += 8
        if not 0 < count <= 128 or check != 77:
            raise ValueError(f"not a CSA header ({count} tags, check {check})")
        tags: dict[str, list[Any]] = {}
        first_items = None
        for _ in range(count):
            name_bytes, vm, vr_bytes, _syngo, n_items, _last = struct.unpack_from("<64si4s3i", data, pos)
            pos += 84
            if not 0 <= n_items <= MAX_ITEMS:
                raise ValueError(f"CSA tag with {n_items} items")
            first_items = n_items if first_items is None else first_items
            convert = _NUMBERS.get(vr_bytes.split(b"\0")[0].decode("latin-1").strip())
            wanted = vm or n_items
            values: list[Any] = []
            for item in range(n_items):
                x0, x1, _x2, _x3 = struct.unpack_from("<4i", data, pos)
                pos += 16
                length = x1 if csa2 else x0 - first_items
                if length < 0 or pos + length > len(data):
                    raise ValueError("CSA item runs past the end of the header")
                text = data[pos:pos + length].split(b"\0")[0].decode("latin-1").strip()
                pos += length + (-length % 4)
                if item < wanted and text:
                    values.append(convert(float(text)) if convert is int else convert(text) if convert else text)
            tags[name_bytes.split(b"\0")[0].decode("latin-1")] = values
        return tags
    except struct.error as exc:
        raise ValueError(f"CSA header cut short ({exc})") from None


def csa_image_header(ds: Any) -> dict[str, list[Any]]:
    """The CSA Image Header Info of a pydicom data set as ``read_csa`` returns it; {} when the file has none or it
    is unreadable (anonymisers often strip private tags)."""
    try:
        block = ds.private_block(0x0029, CREATOR)
        return read_csa(bytes(block[0x10].value))
    except (KeyError, ValueError, TypeError):
        return {}


def encode_csa(tags: dict[str, tuple[str, list[Any]]]) -> bytes:
    """A CSA2 header holding ``tags`` (name → (VR, values)): what synthetic Siemens files carry in tests."""
    out = [b"SV10\x04\x03\x02\x01", struct.pack("<2I", len(tags), 77)]
    for name, (vr, values) in tags.items():
        out.append(struct.pack("<64si4s3i", name.encode(), len(values), vr.encode(), 0, len(values), 77))
        for value in values:
            text = (repr(float(value)) if vr in ("FD", "FL", "DS") else str(value)).encode() + b"\0"
            out.append(struct.pack("<4i", len(text), len(text), 77, len(text)) + text + b"\0" * (-len(text) % 4))
    return b"".join(out)
