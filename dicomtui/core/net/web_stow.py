"""STOW-RS (PS3.18 10.5): instance files sent to a DICOMweb node in batched multipart/related requests, each
instance's result read from the response (Referenced SOP Sequence, Failed SOP Sequence with its Failure Reason),
reported like a C-STORE send (:class:`.send.SendReport`).

The multipart body is written here from the files' bytes as stored (dicomweb-client's ``store_instances`` takes
pydicom data sets and would re-encode them): a few lines, and the instances arrive byte for byte. With a
``transform`` (the export's hook, ``Dataset -> Dataset | None``: issue 17's de-identification) each instance of a
batch is read by pydicom, transformed and written as a PS3.10 file in memory, one batch at a time.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DicomtuiError, NetworkError
from .nodes import RemoteNode
from .send import SendItem, SendReport
from .status import status_meaning
from .web import DICOM_JSON, HttpStatusError, WebClient

if TYPE_CHECKING:
    from .send import Transform

STOW_BATCH_BYTES = 32 * 1024 * 1024  # one request holds at most this much (one larger instance goes alone)
STOW_BATCH_COUNT = 200  # and at most this many instances
STOW_TRIES = 2  # a batch whose request failed (connection lost, HTTP 5xx) is sent once more
_FAILED_SOP_SEQUENCE, _REFERENCED_SOP_SEQUENCE = "00081198", "00081199"
_REFERENCED_SOP_INSTANCE_UID, _FAILURE_REASON, _WARNING_REASON = "00081155", "00081197", "00081196"


def batches(files: list[dict[str, Any]], max_bytes: int = STOW_BATCH_BYTES,
            max_count: int = STOW_BATCH_COUNT) -> Iterator[list[dict[str, Any]]]:
    """``files`` (dicts with "path") in order, cut into batches of at most ``max_bytes`` (by file size) and
    ``max_count`` instances; a file larger than ``max_bytes`` is a batch of its own."""
    batch: list[dict[str, Any]] = []
    size = 0
    for row in files:
        length = os.path.getsize(row["path"]) if os.path.exists(row["path"]) else 0
        if batch and (size + length > max_bytes or len(batch) >= max_count):
            yield batch
            batch, size = [], 0
        batch.append(row)
        size += length
    if batch:
        yield batch


def multipart_body(paths: list[str | bytes], boundary: str) -> bytes:
    """A multipart/related body of ``application/dicom`` parts, one file each (PS3.18 8.6.1.2): a path is read,
    bytes are the file's content. Raises OSError."""
    parts = []
    for path in paths:
        data = path if isinstance(path, bytes) else Path(path).read_bytes()
        parts += [f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(), data, b"\r\n"]
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts)


def stow(node: RemoteNode, files: list[dict[str, Any]], progress: Callable[[int, int], None] | None = None,
         cancel: threading.Event | None = None, max_bytes: int = STOW_BATCH_BYTES,
         max_count: int = STOW_BATCH_COUNT, transform: Transform | None = None) -> SendReport:
    """STOW-RS ``files`` (dicts with "path" and "SOPInstanceUID", as :func:`.selection.instance_files` gives)
    to ``node``. Each instance gets the status the response gives it (0 stored, the Warning Reason, or the
    Failure Reason, PS3.18 10.5.3); an instance the response does not name has failed. A batch refused whole
    (HTTP 400/413) is split (:func:`_send_split`). Any other HTTP error stops the send (``report.error``: the
    status and what to check; ``not_sent`` the rest). ``progress(done, total)`` counts instances; ``cancel``
    stops between batches. ``transform`` changes each instance first (see the module docstring); the items then
    name the SOP Instance UIDs sent, and the instances it leaves out are in ``left_out``. Raises NodeError when a
    credential cannot be read."""
    report = SendReport(node.url)
    done = 0
    with WebClient(node) as client:
        for batch in batches(files, max_bytes, max_count):
            if cancel is not None and cancel.is_set():
                report.cancelled = True
                break
            try:
                sent = batch if transform is None else _transformed(batch, transform, report)
                report.items += _send_split(client, sent) if sent else []
            except (NetworkError, OSError) as exc:
                report.error = str(exc) if isinstance(exc, DicomtuiError) else f"cannot read a file: {exc}"
                break
            done += len(batch)
            if progress is not None:
                progress(done, len(files))
    report.not_sent = len(files) - done
    return report


def _send_split(client: WebClient, batch: list[dict[str, Any]]) -> list[SendItem]:
    """The items of one batch. A server that refuses a whole request for one bad part (Orthanc: HTTP 400) or for
    its size (HTTP 413) gets the two halves, down to single instances: the good ones are stored, each refused one
    fails with the server's answer. Raises NetworkError for other refusals (credentials, URL), OSError."""
    try:
        return _items(batch, _send_batch(client, batch))
    except HttpStatusError as exc:
        if exc.status not in (400, 413):
            raise
        if len(batch) == 1:
            return [SendItem(batch[0]["SOPInstanceUID"], batch[0]["path"], None, str(exc))]
    half = len(batch) // 2
    return _send_split(client, batch[:half]) + _send_split(client, batch[half:])


def _send_batch(client: WebClient, batch: list[dict[str, Any]]) -> dict:
    """POST one batch (tried STOW_TRIES times when the connection fails or the server answers 5xx): the DICOM
    JSON response ({} when the server sent none)."""
    boundary = f"dicomtui-{os.urandom(12).hex()}"
    body = multipart_body([row.get("data") or row["path"] for row in batch], boundary)
    url = client.url("stow", "studies")
    headers = {"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
               "Accept": DICOM_JSON}
    for attempt in range(STOW_TRIES):
        try:
            # 409: every instance failed; the body says why, per instance (PS3.18 10.5.3)
            response = client.request("POST", url, "STOW-RS", data=body, headers=headers, ok={409})
        except NetworkError as exc:
            server_side = " answered HTTP 5" in str(exc) or "cannot connect" in str(exc) or "did not answer" in str(exc)
            if attempt + 1 < STOW_TRIES and server_side:
                continue
            raise
        try:
            answer = response.json() if response.content.strip() else {}
        except ValueError:
            answer = {}
        return answer if isinstance(answer, dict) else (answer[0] if answer and isinstance(answer[0], dict) else {})
    raise AssertionError("unreachable")  # pragma: no cover


def _transformed(batch: list[dict[str, Any]], transform: Transform, report: SendReport) -> list[dict[str, Any]]:
    """The rows of ``batch`` transformed: each with its PS3.10 file in "data" and its new SOPInstanceUID; the
    paths of those the transform leaves out go to ``report.left_out``. A file that cannot be read is an item
    that failed."""
    from ..dicomfile import read_dataset

    rows = []
    for row in batch:
        try:
            ds = transform(read_dataset(row["path"], pixels=True).dataset)
        except Exception as exc:  # noqa: BLE001 - one unreadable file: report it, send the rest (as send.py)
            report.items.append(SendItem(row["SOPInstanceUID"], row["path"], None,
                                         f"not sent: {type(exc).__name__}: {exc}"))
            continue
        if ds is None:
            report.left_out.append(row["path"])
            continue
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
        rows.append({**row, "SOPInstanceUID": str(ds.SOPInstanceUID), "data": out.getvalue()})
    return rows


def _items(batch: list[dict[str, Any]], answer: dict) -> list[SendItem]:
    """One SendItem per instance of ``batch``, from the STOW-RS response ``answer``."""
    outcome: dict[str, tuple[int | None, str]] = {}
    for item in answer.get(_REFERENCED_SOP_SEQUENCE, {}).get("Value", []):
        uid = _first(item, _REFERENCED_SOP_INSTANCE_UID)
        warning = _first(item, _WARNING_REASON)
        outcome[uid] = (int(warning), status_meaning(int(warning))) if warning else (0, "Success")
    for item in answer.get(_FAILED_SOP_SEQUENCE, {}).get("Value", []):
        uid = _first(item, _REFERENCED_SOP_INSTANCE_UID)
        reason = _first(item, _FAILURE_REASON)
        code = int(reason) if reason else 0xC000
        outcome[uid] = (code, status_meaning(code))
    missing = (None, "not named in the STOW-RS response (not stored)")
    return [SendItem(row["SOPInstanceUID"], row["path"], *outcome.get(row["SOPInstanceUID"], missing))
            for row in batch]


def _first(item: dict, tag: str) -> str:
    values = item.get(tag, {}).get("Value", [])
    return str(values[0]) if values else ""
