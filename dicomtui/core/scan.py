"""Finding the files to import: folders walked (hidden files too, symlinked folders once), DICOMDIRs followed
(PS3.10 7.2, PS3.3 F.3), every file that cannot be reached reported as a :class:`Problem` with its reason.

A DICOMDIR does not limit what is imported: its folder is walked like any other, so files it does not list (a
sub-folder added to a CD, another project's images) are imported too and named (``unlisted``).
What the DICOMDIR adds is the check that each file it references is there; references are resolved as CD media
are read (ISO 9660 names are upper case, PS3.12 / PS3.10 8.5): case-insensitively, with an optional extension
(an entry ``IM000000`` finds ``im000000.dcm``).

A 3D Slicer DICOM database folder (``ctkDICOM.sql`` beside ``dicom/``) is read the same way, through its index:
the files its ``Images`` table lists (those Slicer copied and those it linked elsewhere), read-only
(:mod:`dicomtui.core.slicerdb`); one sentence per such folder goes to ``notes`` for the import summary."""

from __future__ import annotations

import logging
import os
import stat as stat_mod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .dicomfile import captured_warnings
from .slicerdb import SLICER_INDEX, read_slicer_database

log = logging.getLogger("dicomtui.scan")

# Media Storage Directory Storage (PS3.4 Annex B.5, PS3.3 F.3): the SOP Class of a DICOMDIR, whatever its name.
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
MEDIA_DIRECTORY_REASON = "a DICOMDIR index (media storage directory), not an image: its folder is scanned"
_DICOMDIR = "DICOMDIR"


# What a path that is neither a regular file nor a folder is, by its st_mode (stat(2)): named in the reason, so that
# a symlink to /dev/zero or a FIFO is not taken for a broken link, nor a DICOMDIR entry that is one for missing.
_SPECIAL_KINDS = ((stat_mod.S_ISCHR, "character device"), (stat_mod.S_ISBLK, "block device"),
                  (stat_mod.S_ISFIFO, "FIFO"), (stat_mod.S_ISSOCK, "socket"))


def special_reason(mode: int) -> str:
    """The reason for a path of ``mode`` (st_mode) that is not a regular file: "not a regular file (FIFO)"…"""
    kind = next((name for test, name in _SPECIAL_KINDS if test(mode)), "special file")
    return f"not a regular file ({kind})"


def _not_regular(path: str) -> str:
    """The reason for ``path``, found by a walk or a DICOMDIR to be neither a regular file nor a folder: what it is
    (through symbolic links), or that it is a broken link or missing."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "broken symbolic link" if os.path.islink(path) else "missing"
    except OSError as exc:
        return f"cannot stat: {exc.strerror or exc}"
    return special_reason(st.st_mode)


_ARTICLE = {"broken symbolic link": "a broken symbolic link"}


@dataclass
class Problem:
    """A file not imported (or imported with a warning) and why, in words."""

    path: str
    reason: str


@dataclass
class _Index:
    """A DICOMDIR met in a walk and the files it lists (resolved paths)."""

    path: str
    folder: str
    listed: set[str]


def scan(paths: Iterable[str | os.PathLike], problems: list[Problem],
         unlisted: dict[str, str] | None = None, notes: list[str] | None = None) -> list[tuple[str, int, int]]:
    """Every regular file under ``paths`` as (absolute path, size, mtime_ns), in a stable order.

    Folders are recursive, hidden files included, symlinked folders followed once (no loops). A DICOMDIR met in
    a folder is the folder's index, not a file to import: references to missing files become problems, and the
    files of its folder it does not list are imported too and named in ``unlisted`` (file -> DICOMDIR). A
    DICOMDIR given by name (or any Media Storage Directory file given) contributes the files it references.
    """
    found: list[tuple[str, int, int]] = []
    for _folder in iter_scan(paths, found, problems, unlisted=unlisted, notes=notes):
        pass
    return found


def iter_scan(paths: Iterable[str | os.PathLike], found: list[tuple[str, int, int]],
              problems: list[Problem], stat: bool = True, skip: str | None = None,
              unlisted: dict[str, str] | None = None, notes: list[str] | None = None) -> Iterator[str]:
    """:func:`scan` appending to ``found``, yielding each folder once it is listed (for progress).

    With ``stat`` False, files found by walking folders get size and mtime -1 (the parser stats them).
    ``skip`` is a folder never entered (the database's own folder, when it lies inside what is imported).
    ``unlisted`` receives each file found under a DICOMDIR's folder that no DICOMDIR above it references, with
    the nearest DICOMDIR: as the walk goes (a file is there before its folder is yielded). ``notes`` receives
    a sentence per 3D Slicer database folder read."""
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
            yield from _walk(top, found, seen_dirs, problems, stat, {} if unlisted is None else unlisted,
                             [] if notes is None else notes)
        elif stat_mod.S_ISREG(st.st_mode) and (os.path.basename(top).upper() == _DICOMDIR
                                                or is_media_directory(top)):
            found += _dicomdir_files(top, problems) or []
        elif os.path.basename(top) == SLICER_INDEX:  # the index given by name: its database, as for a DICOMDIR
            _slicer_files(os.path.dirname(top), found, problems, [] if notes is None else notes)
        elif stat_mod.S_ISREG(st.st_mode):
            found.append((top, st.st_size, st.st_mtime_ns))
        else:
            problems.append(Problem(top, special_reason(st.st_mode)))
        yield top


def _walk(top: str, found: list, seen_dirs: set, problems: list[Problem], stat: bool,
          unlisted: dict[str, str], notes: list[str]) -> Iterator[str]:
    """Depth first, names sorted; a DICOMDIR of a folder is read before its files (it is the folder's index);
    a 3D Slicer database folder contributes the files of its index instead of its own."""
    indexes: list[_Index] = []
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
        if any(e.name == SLICER_INDEX for e in entries) and _slicer_files(folder, found, problems, notes):
            yield folder
            continue
        entries = _take_dicomdir(entries, problems, indexes)
        start = len(found)
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
                elif not any(p.path == entry.path for p in problems):  # a DICOMDIR entry may have said it
                    problems.append(Problem(entry.path, _not_regular(entry.path)))
            except OSError as exc:
                problems.append(Problem(entry.path, f"cannot stat: {exc.strerror or exc}"))
        if indexes:
            _note_unlisted(folder, found[start:], indexes, unlisted)
        stack.extend(reversed(subdirs))
        yield folder


def _slicer_files(folder: str, found: list, problems: list[Problem], notes: list[str]) -> bool:
    """Add the files a 3D Slicer database folder lists (stat'ed: they may lie anywhere); False, after saying
    why, when its index is unreadable (the folder is then walked like any other)."""
    try:
        slicer = read_slicer_database(folder)
    except OSError as exc:
        problems.append(Problem(os.path.join(folder, SLICER_INDEX), f"{exc}; its folder is walked instead"))
        return False
    for path in slicer.copied + slicer.linked:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            problems.append(Problem(path, "listed in the 3D Slicer database's Images table but missing"))
            continue
        except OSError as exc:
            problems.append(Problem(path, f"cannot stat: {exc.strerror or exc}"))
            continue
        if stat_mod.S_ISREG(st.st_mode):
            found.append((path, st.st_size, st.st_mtime_ns))
        else:
            problems.append(Problem(path, special_reason(st.st_mode)))
    notes.append(slicer.sentence())
    return True


def _take_dicomdir(entries: list[os.DirEntry], problems: list[Problem], indexes: list[_Index]) -> list:
    """The entries of a folder without its DICOMDIR, which becomes an index of ``indexes`` (when readable)."""
    for i, entry in enumerate(entries):
        if len(entry.name) == len(_DICOMDIR) and entry.name.upper() == _DICOMDIR and entry.is_file():
            listed = _dicomdir_files(entry.path, problems, stat=False)
            if listed is not None:
                indexes.append(_Index(entry.path, os.path.dirname(entry.path), {f[0] for f in listed}))
            return entries[:i] + entries[i + 1:]
    return entries


def _note_unlisted(folder: str, files: list[tuple[str, int, int]], indexes: list[_Index],
                   unlisted: dict[str, str]) -> None:
    """Files of ``folder`` that no DICOMDIR above them lists, noted with the nearest one."""
    covering = [ix for ix in indexes if folder == ix.folder or folder.startswith(ix.folder + os.sep)]
    if not covering:
        return
    nearest = max(covering, key=lambda ix: len(ix.folder))
    for path, _size, _mtime in files:
        if not any(path in ix.listed for ix in covering):
            unlisted[path] = nearest.path


def is_media_directory(path: str) -> bool:
    """Whether the file at ``path`` is a DICOMDIR (its File Meta Information names the Media Storage Directory
    SOP Class, PS3.10 7.1), whatever its name. False for anything unreadable. Files whose first kilobyte does not
    hold that UID are answered without pydicom (a few microseconds)."""
    from pydicom.errors import InvalidDicomError
    from pydicom.filereader import read_file_meta_info

    try:
        with open(path, "rb") as f:
            head = f.read(1024)
    except OSError:
        return False
    at = head.find(MEDIA_STORAGE_DIRECTORY.encode())
    if at < 0 or head[at + len(MEDIA_STORAGE_DIRECTORY):at + len(MEDIA_STORAGE_DIRECTORY) + 1].isdigit():
        return False
    try:
        meta = read_file_meta_info(path)
    except (OSError, InvalidDicomError, ValueError, EOFError, KeyError, TypeError):
        return False
    return str(meta.get("MediaStorageSOPClassUID", "")) == MEDIA_STORAGE_DIRECTORY


def _dicomdir_files(dicomdir: str, problems: list[Problem], stat: bool = True,
                    ) -> list[tuple[str, int, int]] | None:
    """The files a DICOMDIR references, resolved as on CD media (:class:`_Resolver`); missing ones reported.
    None when the DICOMDIR is unusable (the caller then walks the folder instead). With ``stat`` False, sizes
    and mtimes are -1."""
    import pydicom

    base = os.path.dirname(dicomdir)
    try:
        with captured_warnings() as caught:  # pydicom's complaints about the index itself: logged, never printed
            ds = pydicom.dcmread(dicomdir, force=True)
            records = ds.DirectoryRecordSequence
        for warning in caught:
            log.debug("%s: %s", dicomdir, warning)
    except Exception as exc:  # noqa: BLE001 - any parse failure means: not a usable DICOMDIR
        problems.append(Problem(dicomdir, f"unreadable DICOMDIR ({type(exc).__name__}: {exc}); "
                                          "importing every file of its folder instead"))
        return None
    resolver = _Resolver()
    out, seen = [], set()
    for rec in records:
        ref = rec.get("ReferencedFileID")
        if not ref:
            continue
        parts = [str(p).strip() for p in ([ref] if isinstance(ref, str) else list(ref))]
        if any(p in ("", ".", "..") or "/" in p for p in parts):
            problems.append(Problem(os.path.join(base, *parts), "DICOMDIR reference outside its folder: ignored"))
            continue
        path = resolver.resolve(base, parts)
        if path is None:
            given = os.path.join(base, *parts)
            reason = _not_regular(given) if os.path.lexists(given) and not os.path.isdir(given) else "missing"
            problems.append(Problem(given, "referenced by DICOMDIR but " + _ARTICLE.get(reason, reason)))
            continue
        if path in seen:
            continue
        seen.add(path)
        if not stat:
            out.append((path, -1, -1))
            continue
        try:
            st = os.stat(path)
        except OSError as exc:
            problems.append(Problem(path, f"cannot stat: {exc.strerror or exc}"))
            continue
        out.append((path, st.st_size, st.st_mtime_ns))
    return out


class _Resolver:
    """A DICOMDIR's Referenced File IDs as files: exact first, then case-insensitively (CD media are upper case,
    copies are often lower case), then the last component with an optional extension either way (``IM000000``
    finds ``IM000000.dcm``, ``IM1.DCM`` finds ``IM1``). Folder listings are cached: one listing per folder, not one
    per reference (a CD with 10,000 files in a folder would otherwise list it 10,000 times)."""

    def __init__(self) -> None:
        self._listings: dict[str, tuple[dict[str, str], dict[str, str]] | None] = {}

    def resolve(self, base: str, parts: list[str]) -> str | None:
        path = os.path.join(base, *parts)
        if os.path.isfile(path):
            return path
        current = base
        for i, part in enumerate(parts):
            listing = self._listing(current)
            if listing is None:
                return None
            by_name, by_stem = listing
            match = by_name.get(part.upper())
            if match is None and i == len(parts) - 1:
                match = by_stem.get(_stem(part.upper()))
            if match is None:
                return None
            current = os.path.join(current, match)
        return current if os.path.isfile(current) else None

    def _listing(self, folder: str) -> tuple[dict[str, str], dict[str, str]] | None:
        """Upper-case name -> real name, and upper-case name without its extension -> real name (the first by
        name wins, a ``.dcm`` one before others)."""
        if folder not in self._listings:
            try:
                names = sorted(os.listdir(folder), key=lambda n: (not n.lower().endswith(".dcm"), n))
            except OSError:
                self._listings[folder] = None
                return None
            by_name: dict[str, str] = {}
            by_stem: dict[str, str] = {}
            for name in names:
                by_name.setdefault(name.upper(), name)
                by_stem.setdefault(_stem(name.upper()), name)
            self._listings[folder] = (by_name, by_stem)
        return self._listings[folder]


def _stem(name: str) -> str:
    """A file name without its extension ("IM1.DCM" -> "IM1"; ".hidden" and "IM1" unchanged)."""
    return name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
