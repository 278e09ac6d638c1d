"""A remote series' thumbnail over DICOMweb, so that a user sees what a series is before retrieving it (issue 18):
the middle instance of the series (by InstanceNumber, found by an instance-level QIDO-RS) fetched as a consumer
image, WADO-RS ``/rendered`` (PS3.18 10.4.1.1.3, 8.3.5.1: ``viewport``), else the series' ``/thumbnail``
(PS3.18 10.7, which Orthanc's DICOMweb 1.7 does not offer: 404), decoded by Pillow into an array.

A plain GET, not dicomweb-client's ``retrieve_instance_rendered``: the request goes through our :class:`.web.
WebClient` (its credentials, CA file, timeout and errors in words). One media type per request, PNG then JPEG:
Orthanc's DICOMweb 1.7 answers any Accept list (``image/png, image/jpeg``) or parameter (``;q=``) with HTTP 400
"Parameter out of range".
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass

import numpy as np

from ..errors import NetworkError
from .nodes import RemoteNode
from .query import QueryFilters
from .web import HttpStatusError, WebClient, qido

ACCEPTS = ("image/png", "image/jpeg")  # lossless first; both are what /rendered must offer (PS3.18 8.7.4)
VIEWPORT = (256, 256)  # columns, rows asked for (the server keeps the aspect); the screen resizes again
NOT_OFFERED = {400, 404, 405, 406, 415, 501}  # what a server that has no such resource answers


@dataclass
class RenderedThumbnail:
    """A series' thumbnail: ``pixels`` uint8, grey (rows, columns) or RGB (rows, columns, 3), as the server
    rendered it (its window, its size within the viewport); None with ``reason`` (one sentence) when the server
    offers no rendered image. ``url`` is the resource that answered (or the last one tried)."""

    series_uid: str
    sop_instance_uid: str = ""
    pixels: np.ndarray | None = None
    url: str = ""
    reason: str = ""


def middle_instance(client: WebClient, study_uid: str, series_uid: str) -> str:
    """The SOPInstanceUID of the series' middle instance by InstanceNumber (those without one last, then by
    UID), by an instance-level QIDO-RS; "" when the server lists none. Raises NetworkError."""
    images = qido(client.node, "image", QueryFilters(study_uid=study_uid, series_uid=series_uid), client)
    if not images:
        return ""

    def order(image: dict[str, str]) -> tuple[int, int, str]:
        number = image.get("InstanceNumber", "").strip()
        try:
            return 0, int(float(number)), image.get("SOPInstanceUID", "")
        except ValueError:
            return 1, 0, image.get("SOPInstanceUID", "")

    images.sort(key=order)
    return images[(len(images) - 1) // 2].get("SOPInstanceUID", "")


def first_series(client: WebClient, study_uid: str) -> str:
    """The study's series with the lowest SeriesNumber that holds instances (QIDO-RS), "" when none does: the
    one a study row's thumbnail shows. Raises NetworkError."""
    series = qido(client.node, "series", QueryFilters(study_uid=study_uid), client)

    def order(row: dict[str, str]) -> tuple[bool, int, str]:
        number = row.get("SeriesNumber", "").strip()
        empty = row.get("NumberOfSeriesRelatedInstances", "1").strip() in ("0",)
        return empty, int(number) if number.lstrip("-").isdigit() else 1 << 31, row.get("SeriesInstanceUID", "")

    series.sort(key=order)
    return series[0].get("SeriesInstanceUID", "") if series else ""


def decode_image(data: bytes) -> np.ndarray:
    """A PNG or JPEG as uint8 grey (rows, columns) or RGB (rows, columns, 3). Raises NetworkError when Pillow
    cannot read it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            image: Image.Image = opened
            if image.mode not in ("L", "RGB"):
                image = image.convert("RGB" if image.mode in ("RGBA", "P", "CMYK", "YCbCr") else "L")
            return np.asarray(image, dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError) as exc:
        raise NetworkError(f"the rendered image is not a PNG or JPEG Pillow can read ({exc})") from None


def fetch_thumbnail(node: RemoteNode, study_uid: str, series_uid: str = "",
                    cancel: threading.Event | None = None, viewport: tuple[int, int] = VIEWPORT
                    ) -> RenderedThumbnail | None:
    """The thumbnail of series ``series_uid`` of study ``study_uid`` (no series: the study's first, see
    :func:`first_series`) at DICOMweb node ``node``: its middle instance's ``/rendered`` image scaled into
    ``viewport`` (columns, rows), else the series' ``/thumbnail``. None when ``cancel`` was set between two
    requests. A server that offers neither gives a thumbnail without pixels and the reason. Raises NetworkError
    (connection, TLS, credentials: the HTTP status and what to check) and NodeError (a credential file)."""
    with WebClient(node) as client:
        series_uid = series_uid or first_series(client, study_uid)
        if not series_uid:
            return RenderedThumbnail("", reason="the study has no series at the server")
        if cancel is not None and cancel.is_set():
            return None
        sop = middle_instance(client, study_uid, series_uid)
        series_path = f"studies/{study_uid}/series/{series_uid}"
        tried: list[str] = []
        for path, query in ((f"{series_path}/instances/{sop}/rendered", f"viewport={viewport[0]},{viewport[1]}"),
                            (f"{series_path}/thumbnail", "")):
            if cancel is not None and cancel.is_set():
                return None
            if not sop and "/instances/" in path:  # the server lists no instance of the series
                tried.append("rendered: no instance listed")
                continue
            url = client.url("wado", path, query)
            if (data := _get_image(client, url, tried)) is not None:
                return RenderedThumbnail(series_uid, sop, decode_image(data), url)
        return RenderedThumbnail(series_uid, sop, None, client.url("wado", series_path),
                                 f"the server offers no rendered image of this series ({'; '.join(tried)})")


def _get_image(client: WebClient, url: str, tried: list[str]) -> bytes | None:
    """The body of ``url`` asked as PNG, else as JPEG; None (and the status in ``tried``) when the server has no
    such resource or neither type. Raises NetworkError for any other failure."""
    for accept in ACCEPTS:
        try:
            return client.request("GET", url, "WADO-RS rendered", headers={"Accept": accept}).content
        except HttpStatusError as exc:
            if exc.status not in NOT_OFFERED:
                raise
            status = exc.status
            if status not in (400, 406):  # 404, 405, 501: no such resource, whatever the type
                break
    tried.append(f"{url.split('?')[0].rsplit('/', 1)[-1]}: HTTP {status}")
    return None
