"""One error family for what the user is told.

A ``DicomtuiError`` is a failure the user can act on: ``str(error)`` is a whole sentence that names the thing (a
file, a database, a peer), says what went wrong and, where it helps, what to check. The faces print it as it is
(the CLI exits 2, the TUI shows a message); any other exception reaching a face is a bug and is shown as one,
with its traceback. Rejected files during an import are not errors but report rows (``indexer.Problem``).
"""

from __future__ import annotations


class DicomtuiError(Exception):
    """Base of every user-facing error; the message is a sentence for the user."""


class DatabaseError(DicomtuiError):
    """A database cannot be opened or used (locked, damaged, newer schema, not a database); says what to do."""


class SettingsError(DicomtuiError):
    """The settings file exists but is not valid; the message names the file and the key."""


class NodeError(DicomtuiError):
    """A network node is unknown or badly written; the message says how to write it."""


class NetworkError(DicomtuiError):
    """A DIMSE (or later DICOMweb) operation failed; the message names the peer and says what to check."""


class ServiceNotOffered(NetworkError):
    """The peer accepted the association but none of the service's presentation contexts (a storage-only peer
    asked for a query, …): the message names the service it lacks."""


class LoadError(DicomtuiError):
    """A loadable cannot become a volume (pixels unreadable, sizes differ…); the message says why."""


class PixelError(LoadError):
    """A frame could not be read or decoded; the message names the file and why."""


class VolumeWriteError(DicomtuiError):
    """A volume cannot be written where or how asked (format, grid, data type)."""


class MetadataError(DicomtuiError):
    """A file's tags cannot be shown; the message names the file and says why."""


class SelectionError(DicomtuiError):
    """A UID prefix or row id the user typed names several rows; the message lists them and how to choose."""


class HeaderError(DicomtuiError):
    """A file cannot be indexed; the message is the reason shown in the import report."""


class ExportError(DicomtuiError):
    """An export cannot start: its destination exists (and overwriting was not asked), or cannot be made."""


class PatchError(DicomtuiError):
    """A patch cannot start: the source is not a folder, the destination is inside it or not empty, a rule is
    unknown."""
