"""Fuzz of the header reads (issue 13): thousands of mutants of generated files and of pydicom's test files
through the C walk, the Python walk and ``read_checked``. Seeded, so every run tries the same mutants.

Per mutant: no exception other than HeaderError (the named rejection), a time bound (no hang: a SIGALRM stops a
read that loops), and the C and Python walks give the same record or the same sentence."""

from __future__ import annotations

import random
import signal
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from dicomtui.core import header
from dicomtui.core.database.records import read_checked
from dicomtui.core.errors import HeaderError
from dicomtui.core.synth import SeriesSpec, write_series

SEED = 1313
MUTANTS = 3000
PER_MUTANT_SECONDS = 2.0  # a read of a mutant of a file under 300 KB; the slowest seen is ~10 ms
PYDICOM_FILES = ("CT_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "JPEG2000.dcm", "rtplan.dcm",
                 "nested_priv_SQ.dcm", "SC_rgb_rle.dcm", "UN_sequence.dcm", "ExplVR_LitEndNoMeta.dcm", "rtstruct.dcm")
# Values written over length fields and tags: undefined length, zero, huge, odd, item and delimiter tags, VRs.
INTERESTING = (b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\xf0\xff\xff\x7f", b"\x01\x00\x00\x00", b"\xfe\xff\x00\xe0",
               b"\xfe\xff\xdd\xe0", b"\xfe\xff\x0d\xe0", b"SQ\x00\x00", b"UN\x00\x00", b"OB\x00\x00",
               b"\xe0\x7f\x10\x00", b"\x00\x00\x00\x00\x00\x00\x00\x00")


@dataclass
class FuzzStats:
    tried: int = 0
    crashes: list[str] = field(default_factory=list)  # "mutant i: ExceptionType: message"
    hangs: list[int] = field(default_factory=list)
    disagreements: list[int] = field(default_factory=list)
    slowest: float = 0.0


def sources(folder: Path) -> list[bytes]:
    """Generated files (explicit VR, a multi-frame-less series) and pydicom's test files of every encoding."""
    synth = write_series(folder, SeriesSpec(slices=2, rows=16, cols=16, modality="MR"))
    paths = [str(p) for p in synth] + [get_testdata_file(name, download=False) for name in PYDICOM_FILES]
    return [Path(p).read_bytes() for p in paths if p]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four edits: a bit flip, an interesting 2/4/8 bytes written over a length or tag, bytes inserted or
    deleted (shifting every element after them), or a cut."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if len(out) < 8:
            break
        at = rng.randrange(0, len(out)) if rng.random() < 0.1 else rng.randrange(min(128, len(out) - 1), len(out))
        how = rng.random()
        if how < 0.3:
            out[at] ^= 1 << rng.randrange(8)
        elif how < 0.6:
            value = rng.choice(INTERESTING)
            out[at:at + len(value)] = value
        elif how < 0.75:
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.choice((1, 2, 3, 4, 8))))
        elif how < 0.9:
            del out[at:at + rng.choice((1, 2, 4, 8))]
        else:
            del out[at:]
    return bytes(out)


def _outcome(read, path: str):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            record = read(path)
    except HeaderError as exc:
        return ("rejected", str(exc))
    return record


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang


def fuzz(folder: Path, count: int = MUTANTS, seed: int = SEED, c_walk=None) -> FuzzStats:
    """Run ``count`` mutants; ``c_walk``: the compiled walk module (None: the C column is skipped)."""
    rng = random.Random(seed)
    originals = sources(folder / "src")
    target = str(folder / "m.dcm")
    stats = FuzzStats()
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        for i in range(count):
            Path(target).write_bytes(mutate(rng.choice(originals), rng))
            stats.tried += 1
            start = time.perf_counter()
            signal.setitimer(signal.ITIMER_REAL, PER_MUTANT_SECONDS * 5)
            try:
                outcomes = []
                for walk in ([c_walk] if c_walk is not None else []) + [None]:
                    header._scan = walk
                    outcomes.append(_outcome(header.read_header, target))
                header._scan = c_walk
                _outcome(read_checked, target)
            except _Hang:
                stats.hangs.append(i)
                continue
            except Exception as exc:  # noqa: BLE001 - what the fuzz looks for
                stats.crashes.append(f"mutant {i}: {type(exc).__name__}: {exc}")
                continue
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            seconds = time.perf_counter() - start
            stats.slowest = max(stats.slowest, seconds)
            if seconds > PER_MUTANT_SECONDS:
                stats.hangs.append(i)
            if len(outcomes) == 2 and outcomes[0] != outcomes[1]:
                stats.disagreements.append(i)
    finally:
        signal.signal(signal.SIGALRM, old)
    return stats


def test_thousands_of_mutants_are_read_or_rejected_with_a_sentence(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(header, "_scan", header._scan)  # restored after the fuzz switches walks
    stats = fuzz(tmp_path, c_walk=header._load_scan())
    assert stats.tried == MUTANTS
    assert stats.crashes == []
    assert stats.hangs == []
    assert stats.disagreements == []
