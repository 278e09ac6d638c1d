"""Finding the files to import: folders walked (hidden files too, symlinked folders once), DICOMDIRs followed
(PS3.10 7.2, PS3.3 F.3), every file that cannot be reached reported as a :class:`Problem` with its reason."""

from __future__ import annotations

import os
import stat as stat_mod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass
class Problem:
    """A file not imported (or imported with a warning) and why, in words."""

    path: str
    reason: str




def scan(paths: Iterable[str | os.PathLike], problems: list[Problem]) -> list[tuple[str, int, int]]:
    """Every regular file under ``paths`` as (absolute path, size, mtime_ns), in a stable order.

    Folders are recursive, hidden files included, symlinked folders followed once (no loops). A folder whose top
    holds a ``DICOMDIR`` contributes only the files that DICOMDIR references.
    """
    found: list[tuple[str, int, int]] = []
    for _folder in iter_scan(paths, found, problems):
        pass
    return found


def iter_scan(paths: Iterable[str | os.PathLike], found: list[tuple[str, int, int]],
              problems: list[Problem], stat: bool = True, skip: str | None = None) -> Iterator[str]:
    """:func:`scan` appending to ``found``, yielding each folder once it is listed (for progress).

    With ``stat`` False, files found by walking folders get size and mtime -1 (the parser stats them).
    ``skip`` is a folder never entered (the database's own folder, when it lies inside what is imported)."""
    seen_dirs: set[tuple[int, int]] = set()
    if skip is not None and os.path.isdir(skip):
        st = os.stat(skip)
        seen_dirs.add((st.st_dev, st.st_ino))
        skip = os.path.realpath(skip)
    for given in paths:
        top = os.path.abspath(os.fspath(given))
        try:
            st = os.stat(top)
        except OSError as exc:
            problems.append(Problem(top, f"cannot open: {exc.strerror or exc}"))
            continue
        real = os.path.realpath(top)
        if skip is not None and (real == skip or real.startswith(skip + os.sep)):
            problems.append(Problem(top, "inside the database folder: not imported (its files are already ours)"))
            continue
        if stat_mod.S_ISDIR(st.st_mode):
            dicomdir = _find_dicomdir(top)
            listed = _dicomdir_files(dicomdir, problems) if dicomdir else None
            if listed is not None:
                found += listed
            else:
                yield from _walk(top, found, seen_dirs, problems, stat)
        elif os.path.basename(top).upper() == "DICOMDIR":
            found += _dicomdir_files(top, problems) or []
        elif stat_mod.S_ISREG(st.st_mode):
            found.append((top, st.st_size, st.st_mtime_ns))
        else:
            problems.append(Problem(top, "not a regular file or folder"))
        yield top


def _walk(top: str, found: list, seen_dirs: set, problems: list[Problem], stat: bool = True) -> Iterator[str]:
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
            key = (st.st_dev, st.st_ino)
            if key in seen_dirs:
                continue  # a symlink loop, a folder reached twice, or the database's own folder
            seen_dirs.add(key)
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            problems.append(Problem(folder, f"cannot list folder: {exc.strerror or exc}"))
            continue
        subdirs = []
        for entry in entries:
            try:
                if entry.is_dir():
                    subdirs.append(entry.path)
                elif entry.is_file():
                    if stat:
                        est = entry.stat()
                        found.append((entry.path, est.st_size, est.st_mtime_ns))
                    else:
                        found.append((entry.path, -1, -1))
                elif entry.is_symlink():
                    problems.append(Problem(entry.path, "broken symbolic link"))
                else:
                    problems.append(Problem(entry.path, "not a regular file (device, pipe or socket)"))
            except OSError as exc:
                problems.append(Problem(entry.path, f"cannot stat: {exc.strerror or exc}"))
        stack.extend(reversed(subdirs))
        yield folder


def _find_dicomdir(folder: str) -> str | None:
    for name in ("DICOMDIR", "dicomdir"):
        candidate = os.path.join(folder, name)
        if os.path.isfile(candidate):
            return candidate
    return None


def _dicomdir_files(dicomdir: str, problems: list[Problem]) -> list[tuple[str, int, int]] | None:
    """The files a DICOMDIR references (matched case-insensitively, as on CD media); missing ones reported.
    None when the DICOMDIR is unusable (the caller then walks the folder instead)."""
    import pydicom

    base = os.path.dirname(dicomdir)
    try:
        ds = pydicom.dcmread(dicomdir, force=True)
        records = ds.DirectoryRecordSequence
    except Exception as exc:  # noqa: BLE001 - any parse failure means: not a usable DICOMDIR
        problems.append(Problem(dicomdir, f"unreadable DICOMDIR ({type(exc).__name__}: {exc}); "
                                          "importing every file of its folder instead"))
        return None
    out, seen = [], set()
    for rec in records:
        ref = rec.get("ReferencedFileID")
        if not ref:
            continue
        parts = [str(p).strip() for p in ([ref] if isinstance(ref, str) else list(ref))]
        if any(p in ("", ".", "..") or "/" in p for p in parts):
            problems.append(Problem(os.path.join(base, *parts), "DICOMDIR reference outside its folder: ignored"))
            continue
        path = _resolve_case(base, parts)
        if path is None:
            problems.append(Problem(os.path.join(base, *parts), "referenced by DICOMDIR but missing"))
            continue
        if path in seen:
            continue
        seen.add(path)
        try:
            st = os.stat(path)
        except OSError as exc:
            problems.append(Problem(path, f"cannot stat: {exc.strerror or exc}"))
            continue
        out.append((path, st.st_size, st.st_mtime_ns))
    return out


def _resolve_case(base: str, parts: list[str]) -> str | None:
    path = os.path.join(base, *parts)
    if os.path.isfile(path):
        return path
    current = base
    for part in parts:
        try:
            match = next((n for n in os.listdir(current) if n.upper() == part.upper()), None)
        except OSError:
            return None
        if match is None:
            return None
        current = os.path.join(current, match)
    return current if os.path.isfile(current) else None


