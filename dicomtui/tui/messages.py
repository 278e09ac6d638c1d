"""What the TUI's thread workers tell the screens: results and progress as small ``Message`` dataclasses.

A worker posts with ``self.post_message(...)`` (Textual makes that thread-safe); the node that runs the worker
(the app or a screen) handles the message on the UI thread with ``@on(...)``. Progress messages replace one of
their kind still waiting in the queue (``can_replace``, as Textualize/toolong's ``ScanProgress``): a worker that
reports faster than the screen draws never queues frames that would only be drawn over. A result message is of
another kind, so the last progress before it is always shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from ..core.database import DeleteReport
    from ..core.examine import Loadable
    from ..core.indexer import ImportProgress, ImportReport
    from ..core.net.doctor import DoctorReport
    from ..core.net.echo import EchoResult
    from ..core.net.retrieve import RetrieveReport
    from ..core.net.send import SendReport
    from .widgets.slice_view import ViewerItem


class Coalescing(Message):
    """A progress message: a newer one of the same kind supersedes it while it waits in the queue."""

    def can_replace(self, message: Message) -> bool:
        return type(message) is type(self)


# ---- progress (coalescing) ----------------------------------------------------------------------------------

@dataclass
class Status(Coalescing):
    """What a worker of the app is doing, in words, for the browser's status line."""

    text: str


@dataclass
class Progress(Coalescing):
    """``done`` of ``total`` items (instances sent or retrieved) for a progress bar."""

    done: int
    total: int


@dataclass
class ImportProgressed(Coalescing):
    """The importer's latest progress event (phase, files scanned, done of total, current path)."""

    progress: ImportProgress


# ---- results ------------------------------------------------------------------------------------------------

@dataclass
class ImportFinished(Message):
    """The import ended (finished or cancelled): its report."""

    report: ImportReport


@dataclass
class Deleted(Message):
    """The delete ended: what went (rows, copied files) and what stayed (linked files, errors)."""

    report: DeleteReport


@dataclass
class ListenerStopped(Message):
    """Our C-STORE listener stopped after its open associations finished; ``indexed`` instances received."""

    indexed: int


@dataclass
class Examined(Message):
    """The loadables of the examined series, with each series' label by SeriesInstanceUID; ``show``: open the
    examine screen (else load the default selection)."""

    loadables: list[Loadable]
    labels: dict[str, str]
    show: bool


@dataclass
class VolumesLoaded(Message):
    """Loaded loadables, one viewer item each, in the order asked; ``warnings``: what loading found beyond the
    loadables' own warnings ("NAME: sentence"), to be said once."""

    items: list[ViewerItem]
    warnings: list[str] = field(default_factory=list)


@dataclass
class Echoed(Message):
    """The C-ECHO's outcome (success or the reason, in words)."""

    result: EchoResult


@dataclass
class DoctorChecked(Message):
    """The doctor's report on a node: its checks in order (ok: True, False, or None when not tried)."""

    report: DoctorReport


@dataclass
class QueryAnswered(Message):
    """C-FIND answers at ``level`` ("study" or "series"), one dict of keyword → value each."""

    level: str
    answers: list[dict[str, Any]]


@dataclass
class Retrieved(Message):
    """The retrieve ended (done or cancelled): its report."""

    report: RetrieveReport


@dataclass
class Sent(Message):
    """The C-STORE of the selection ended: the report of each instance."""

    address: str
    report: SendReport


@dataclass
class Written(Message):
    """The volume files written (a NIfTI/NRRD file, and FSL bval/bvec beside it for diffusion)."""

    paths: list[Path]


@dataclass
class Stopped(Message):
    """The work stopped before its end (the peer refused, the user cancelled, the file was not written);
    ``text`` says why, for the screen's message line."""

    text: str
