"""Every DIMSE status and every association rejection or abort reason, in words, in one place.

Status codes are PS3.7 Annex C and the service classes of PS3.4 (storage B.2.3, query/retrieve C.4); their
category and short text come from pynetdicom's tables (``pynetdicom.status``: ``STORAGE_SERVICE_CLASS_STATUS``,
``QR_FIND/MOVE/GET_SERVICE_CLASS_STATUS``, ``code_to_category``), and the four codes pynetdicom names in its
``Status`` enum carry the same names here. Rejection and abort reasons are PS3.8 9.3.4 and 9.3.8; their
sentences are ours: they say what to check.

pynetdicom is imported only inside the functions that need its tables: importing this module stays light.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import IntEnum, StrEnum


class Status(IntEnum):
    """The DIMSE status codes we send or act on. SUCCESS, CANCEL, PENDING and MOVE_DESTINATION_UNKNOWN have
    the names and values of ``pynetdicom.status.Status``."""

    SUCCESS = 0x0000
    CANCEL = 0xFE00
    PENDING = 0xFF00
    PENDING_WARNING = 0xFF01  # C-FIND: matches continue, optional keys not supported (PS3.4 C.4.1.1.4)
    MOVE_DESTINATION_UNKNOWN = 0xA801
    OUT_OF_RESOURCES = 0xA700  # C-STORE: refused, out of resources (PS3.4 B.2.3)
    DATASET_MISMATCH = 0xA900  # C-STORE: error, data set does not match SOP class (PS3.4 B.2.3)
    SUBOPERATIONS_OUT_OF_RESOURCES = 0xA702  # C-MOVE/C-GET: unable to perform sub-operations
    CANNOT_UNDERSTAND = 0xC000  # C-STORE: error, cannot understand; C-MOVE/C-GET: unable to process
    SUBOPERATIONS_FAILED = 0xB000  # C-MOVE/C-GET: sub-operations complete, one or more failures or warnings


PENDING_CODES = (Status.PENDING, Status.PENDING_WARNING)


class Service(StrEnum):
    """The DIMSE-C services whose statuses we explain."""

    STORE = "store"
    FIND = "find"
    MOVE = "move"
    GET = "get"


@functools.cache
def _tables() -> tuple[dict[str, dict[int, tuple[str, str]]], Callable[[int], str]]:
    """pynetdicom's status tables by service, and its ``code_to_category`` (imported once, on first use)."""
    from pynetdicom.status import (
        QR_FIND_SERVICE_CLASS_STATUS,
        QR_GET_SERVICE_CLASS_STATUS,
        QR_MOVE_SERVICE_CLASS_STATUS,
        STORAGE_SERVICE_CLASS_STATUS,
        code_to_category,
    )

    return ({Service.STORE: STORAGE_SERVICE_CLASS_STATUS, Service.FIND: QR_FIND_SERVICE_CLASS_STATUS,
             Service.MOVE: QR_MOVE_SERVICE_CLASS_STATUS, Service.GET: QR_GET_SERVICE_CLASS_STATUS}, code_to_category)


def category(code: int) -> str:
    """"success", "warning", "failure", "cancel", "pending" or "unknown" (PS3.7 C.1-C.4)."""
    return _tables()[1](code).lower()


def _words(code: int, service: Service | str) -> tuple[str, str]:
    """(category, text) of ``code`` in the service's table; the category alone when the table lacks it."""
    tables, code_to_category = _tables()
    found = tables[service].get(code)
    return found if found is not None else (code_to_category(code), "")


def status_meaning(code: int) -> str:
    """'0xA700 Failure: Refused: Out of resources' style text for a C-STORE status."""
    kind, text = _words(code, Service.STORE)
    return f"0x{code:04X} {kind}" + (f": {text}" if text else "")


def qr_meaning(code: int, service: Service | str) -> str:
    """'status 0xA801 (Failure: Move destination unknown)' style text for a C-FIND/C-MOVE/C-GET status."""
    kind, text = _words(code, service)
    return f"status 0x{code:04X} ({kind}{': ' + text if text else ''})"


def stopped_answering(address: str, service: Service | str) -> str:
    """A C-FIND/C-MOVE/C-GET whose responses stopped before the final status (DIMSE timeout or an abort)."""
    return f"{address} stopped answering the C-{Service(service).upper()} (timeout or abort)"


# ---- association rejection (A-ASSOCIATE-RJ, PS3.8 9.3.4) -----------------------------------------------------

# (result, source, reason) as we send them, as pynetdicom and DCMTK do
REJECT_CALLING_AE = (1, 1, 3)  # rejected-permanent, service-user, calling AE title not recognized
REJECT_CONTEXT = (1, 1, 2)  # application context name not supported
REJECT_VERSION = (1, 2, 2)  # service-provider (ACSE), protocol version not supported
REJECT_BUSY = (2, 3, 2)  # rejected-transient, service-provider (presentation), local limit exceeded

# What a rejection means, by (source, reason)
_REJECT_REASONS = {
    (1, 1): "no reason given by the peer",
    (1, 2): "the peer does not support the application context",
    (1, 3): "our calling AE title is not recognised by the peer: add it to the peer's list of known nodes",
    (1, 7): "the called AE title is not recognised by the peer: check the node's AE title",
    (2, 1): "no reason given (presentation layer)",
    (2, 2): "the peer does not support this protocol version",
    (3, 1): "the peer is busy (too many associations): try again later",
    (3, 2): "the peer has a local limit exceeded: try again later",
}


def reject_reason(source: int, reason: int) -> str:
    """Why the peer rejected the association, and what to check."""
    return _REJECT_REASONS.get((source, reason), f"source {source}, reason {reason}")


# ---- A-ABORT (PS3.8 9.3.8) --------------------------------------------------------------------------------------

class AbortReason(IntEnum):
    """Reasons of an A-ABORT whose source is the service provider."""

    UNSPECIFIED = 0
    UNRECOGNISED_PDU = 1
    UNEXPECTED_PDU = 2
    INVALID_PARAMETER = 6


ABORT_UNSPECIFIED = AbortReason.UNSPECIFIED
ABORT_UNRECOGNISED_PDU = AbortReason.UNRECOGNISED_PDU
ABORT_UNEXPECTED_PDU = AbortReason.UNEXPECTED_PDU
ABORT_INVALID_PARAMETER = AbortReason.INVALID_PARAMETER
