"""Output file names for volumes written from the database (the TUI's save and the CLI's ``load -o DIR``).

A name is made from the series, as dcm2niix's ``-f %i_%s_%d`` makes it: ``PatientID_SeriesNumber_Description``,
each part safe on every file system (letters, digits, ``-``, ``.`` and ``+``; anything else becomes ``_``). An
existing file is never overwritten unless asked: the next free name gets the letter suffix dcm2niix appends
(``name.nii.gz``, then ``namea.nii.gz``, ``nameb.nii.gz``, …). The default folder is the working directory, unless
that is inside dicomtui's own source tree (``make run`` starts there): then the user's home folder.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .volume_io import output_format

__all__ = ["MAX_PART", "default_output_folder", "free_path", "output_stem", "safe_name", "series_stem",
           "split_extension"]

SIDECARS = (".bval", ".bvec", ".json")  # files written beside a NIfTI under its stem: taken names too
MAX_PART = 64  # characters of one part (a description can be long); a whole name stays far below 255 bytes
_KEEP = frozenset(string.ascii_letters + string.digits + "-.+")
# Names Windows reserves whatever the extension (a database shared over SMB is read there too).
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{n}" for n in range(10)), *(f"LPT{n}" for n in range(10))}
_SUFFIXES = string.ascii_lowercase  # dcm2niix's: a … z


def safe_name(text: Any, fallback: str = "") -> str:
    """``text`` as one safe file-name part: accents dropped (NFKD: "Müller" → "Muller"), every run of other
    characters (spaces, ``/``, ``\\``, ``:``, ``*``, control characters…) one ``_``, no leading or trailing ``_``
    or ``.`` (no hidden file, no ``..``), at most :data:`MAX_PART` characters, never a reserved device name;
    ``fallback`` when nothing is left."""
    ascii_text = unicodedata.normalize("NFKD", "" if text is None else str(text)).encode("ascii", "ignore").decode()
    out: list[str] = []
    for ch in ascii_text:
        if ch in _KEEP:
            out.append(ch)
        elif out and out[-1] != "_":
            out.append("_")
    name = "".join(out)[:MAX_PART].strip("_.")
    if name.split(".")[0].upper() in _RESERVED:
        name = f"_{name}"
    return name or fallback


def series_stem(row: Mapping[str, Any], fallback: str = "volume") -> str:
    """``PatientID_SeriesNumber_Description`` from a row with those keys (``SeriesDescription``, else ``name``,
    e.g. a loadable's name), each part through :func:`safe_name`; parts that are empty are left out (``P1_T1`` when
    the series has no number); ``fallback`` when all are."""
    description = row.get("SeriesDescription") or row.get("name")
    parts = (safe_name(row.get("PatientID")), safe_name(row.get("SeriesNumber")), safe_name(description))
    return "_".join(p for p in parts if p) or fallback


def output_stem(db: Any, series_uid: str, name: str = "") -> str:
    """:func:`series_stem` of the series ``series_uid`` in the database ``db`` (its PatientID through its study);
    ``name`` (e.g. the loadable's) stands in for a missing SeriesDescription; ``safe_name(name)`` or "volume" when
    the series is not in the database."""
    series = db.find("series", series_uid) if series_uid else None
    if series is None:
        return safe_name(name, "volume")
    study = db.get("study", series["study_fk"]) or {}
    patient = db.get("patient", study["patient_fk"]) if study else None
    return series_stem({**series, "PatientID": (patient or {}).get("PatientID"), "name": name})


def split_extension(path: Path) -> tuple[Path, str]:
    """(``path`` without its volume extension, the extension as written): ``a/b.nii.gz`` → (``a/b``,
    ``.nii.gz``). Raises ``VolumeWriteError`` when the name does not end in .nii, .nii.gz or .nrrd."""
    n = len(output_format(path))
    return path.with_name(path.name[:-n]), path.name[-n:]


def _taken(stem: Path, ext: str) -> bool:
    """True when the image or a file written beside it (FSL gradients, a JSON side-car) exists."""
    return any(Path(f"{stem}{e}").exists() for e in (ext, *SIDECARS))


def free_path(path: str | Path) -> Path:
    """``path`` when neither it nor its side-cars exist; else the first free name with dcm2niix's suffix letter
    before the extension (``x.nii.gz`` → ``xa.nii.gz`` … ``xz.nii.gz``, then ``x_27.nii.gz``, ``x_28`` …).
    Raises ``VolumeWriteError`` when the extension is not a volume's. Checked, not reserved: two writers racing
    for one name are not expected (one user, one save at a time)."""
    path = Path(path)
    stem, ext = split_extension(path)
    if not _taken(stem, ext):
        return path
    candidates = [f"{stem}{s}" for s in _SUFFIXES]
    n = len(_SUFFIXES) + 1
    while True:
        for candidate in candidates:
            if not _taken(Path(candidate), ext):
                return Path(candidate + ext)
        candidates = [f"{stem}_{n}"]
        n += 1


def default_output_folder(cwd: Path | None = None) -> Path:
    """Where a volume is saved when the user names no folder: ``cwd`` (default: the working directory), or the
    home folder when ``cwd`` is inside the source tree dicomtui runs from (a checkout with ``pyproject.toml``:
    written volumes would land among the sources and in ``git status``)."""
    cwd = (cwd or Path.cwd()).absolute()
    source = Path(__file__).resolve().parents[2]  # dicomtui/core/naming.py → the checkout (or site-packages)
    if (source / "pyproject.toml").is_file() and cwd.resolve().is_relative_to(source):
        return Path.home()
    return cwd
