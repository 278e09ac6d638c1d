"""DICOMweb (PS3.18) for a node with a base URL: the HTTP session (auth, TLS, timeouts), errors in words, and
QIDO-RS (PS3.18 10.6) with the same query model as C-FIND (:mod:`.query`). STOW-RS is in :mod:`.web_stow`,
WADO-RS retrieve into the database in :mod:`.web_wado`.

HTTP goes through ``requests`` (dicomweb-client's transport, the same session settings). The QIDO URL is
written here rather than by dicomweb-client's ``search_for_*``: those percent-encode ``*`` as ``%2A``, and some
servers (Orthanc 1.10 + DICOMweb 1.7) do not decode percent-encoded values, so that a wildcard sent that way
matches nothing. :func:`decodes_percent` finds out, by a probe, whether a server decodes them; when it does not,
only characters that need no encoding are sent (``*``, ``?``, letters, digits, ``-._~``), every other character
becomes a wildcard, and the answers are matched against the real value here (:func:`wildcard_match`).
"""

from __future__ import annotations

import fnmatch
import time
from dataclasses import dataclass
from urllib.parse import quote

from ..errors import NetworkError
from .nodes import RemoteNode
from .query import RETURN_KEYS, QueryFilters, answer_text, check_level, matching_keys

QIDO_PAGE = 1000  # results asked per QIDO request (limit); the next page (offset) until one comes back short
DICOM_JSON = "application/dicom+json"
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_UID_KEY = {"study": "StudyInstanceUID", "series": "SeriesInstanceUID", "image": "SOPInstanceUID"}
_DECODES: dict[str, bool | None] = {}  # base URL -> does the server decode percent-encoded QIDO values


class HttpStatusError(NetworkError):
    """The server answered an HTTP error status (``status``); the message is :func:`http_problem`'s sentence."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class WebClient:
    """A ``requests`` session for one DICOMweb node: its credentials (read now, :meth:`RemoteNode.web_credentials`),
    its CA file or verify flag, its timeout (seconds). Raises NodeError when a credential cannot be read."""

    def __init__(self, node: RemoteNode):
        import requests

        self.node = node
        self.base = node.url.rstrip("/")
        self.session = requests.Session()
        credentials = node.web_credentials()
        if isinstance(credentials, tuple):  # UTF-8, as RFC 7617 2.1 and Orthanc (requests would send Latin-1)
            from requests.auth import HTTPBasicAuth

            self.session.auth = HTTPBasicAuth(credentials[0].encode(), credentials[1].encode())
        elif credentials:
            self.session.headers["Authorization"] = f"Bearer {credentials}"
        self.session.headers.update(node.headers)
        self.session.verify = (node.tls_ca or True) if node.tls_verify else False
        self.prefixes = {"qido": node.qido_prefix, "wado": node.wado_prefix, "stow": node.stow_prefix}
        self.timeout = node.timeout

    def url(self, service: str, path: str, query: str = "") -> str:
        """The URL of ``path`` of ``service`` ("qido", "wado", "stow"): base URL, the service's prefix, path."""
        prefix = self.prefixes[service].strip("/")
        return "/".join(p for p in (self.base, prefix, path.lstrip("/")) if p) + (f"?{query}" if query else "")

    def request(self, method: str, url: str, what: str, **kwargs):
        """One HTTP request; the response when its status is 2xx (or in ``ok``, a set of codes). Raises
        NetworkError naming the status (or the connection/TLS failure), the URL and what to check."""
        import requests

        ok = kwargs.pop("ok", ())
        # the node's CA file, given per request: requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a
        # session's verify (psf/requests#3829, #4726), and many machines set them (the system bundle, without our CA)
        kwargs.setdefault("verify", self.session.verify)
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise NetworkError(f"{what}: the TLS handshake with {url} failed ({_reason(exc)}): check the node's CA "
                               f"file (--tls-ca) and that the URL's host is the one its certificate names") from None
        except requests.exceptions.Timeout:
            raise NetworkError(f"{what}: {url} did not answer within {self.timeout:g} s (the node's timeout)"
                               ) from None
        except requests.exceptions.ConnectionError as exc:
            raise NetworkError(f"{what}: cannot connect to {url} ({_reason(exc)}): is the server running, and are "
                               f"the URL's host and port right?") from None
        if response.status_code in ok or 200 <= response.status_code < 300:
            return response
        response.close()
        raise HttpStatusError(http_problem(what, response.status_code, response.reason, url), response.status_code)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> WebClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def http_problem(what: str, status: int, reason: str, url: str) -> str:
    """An HTTP error status as a sentence: the status, the URL tried and what to check (PS3.18 8.5)."""
    head = f"{what}: {url} answered HTTP {status}{' ' + reason if reason else ''}"
    if status in (401, 403):
        return f"{head}: check the node's credentials (--user/--password-file, --token-file or --token-env)"
    if status == 404:
        return f"{head}: check the node's base URL (the URL tried is above; Orthanc's is http://HOST:8042/dicom-web)"
    if status == 413:
        return f"{head}: the request is too large for the server (smaller batches are tried)"
    return head


def _reason(exc: Exception) -> str:
    """The innermost reason of a requests/urllib3 error, short."""
    text = str(exc)
    for marker in ("Errno", "SSL:", "Caused by"):
        if marker in text:
            text = text[text.index(marker):]
            break
    return text.rstrip(")'\"")[:200]


# ---- QIDO-RS ------------------------------------------------------------------------------------------------

def qido_path(level: str, study_uid: str = "", series_uid: str = "") -> str:
    """The QIDO-RS resource of a level (PS3.18 10.6.1.2), narrowed to a study / series when given."""
    if level == "study":
        return "studies"
    if level == "series":
        return f"studies/{study_uid}/series" if study_uid else "series"
    if study_uid and series_uid:
        return f"studies/{study_uid}/series/{series_uid}/instances"
    return f"studies/{study_uid}/instances" if study_uid else "instances"


def decodes_percent(client: WebClient) -> bool:
    """Whether the server decodes percent-encoded QIDO values: ``PatientName=*`` and ``PatientName=%2A`` (one
    study each) must both find one. A server holding no study cannot tell (any query finds nothing): False, the
    careful answer, not remembered. Remembered per base URL for the process."""
    if _DECODES.get(client.base) is not None:
        return bool(_DECODES[client.base])
    plain = qido_page(client, "studies", "limit=1&PatientName=*")
    if not plain:
        return False
    encoded = qido_page(client, "studies", "limit=1&PatientName=%2A")
    _DECODES[client.base] = bool(encoded)
    return bool(encoded)


def wildcard_match(pattern: str, value: str) -> bool:
    """DICOM wildcard matching (PS3.4 C.2.2.2.4: ``*`` any run, ``?`` one character), case-insensitive as
    most archives match person names."""
    translated = "".join("[[]" if c == "[" else c for c in pattern)  # fnmatch's [ ] are literal in DICOM
    return fnmatch.fnmatchcase(value.casefold(), translated.casefold())


def _plain_value(value: str) -> str:
    """``value`` with every character that would need percent-encoding replaced by a wildcard: one ASCII
    character by ``?``, a run of non-ASCII characters by ``*`` (a server may count bytes, not characters)."""
    out: list[str] = []
    for c in value:
        if c in _UNRESERVED or c in "*?":
            out.append(c)
        elif ord(c) < 128:
            out.append("?")
        elif not out or out[-1] != "*":
            out.append("*")
    return "".join(out)


def qido_params(keys: dict[str, str], decodes: bool) -> tuple[str, dict[str, str]]:
    """The query string of matching ``keys`` and the keys the answers must be matched against here (those
    whose value the server could not be sent as it is)."""
    parts, check_here = [], {}
    for keyword, value in keys.items():
        if decodes or all(c in _UNRESERVED or c in "*?" for c in value):
            parts.append(f"{keyword}={quote(value, safe='*?')}")
        else:
            parts.append(f"{keyword}={_plain_value(value)}")
            check_here[keyword] = value
    return "&".join(parts), check_here


def qido(node: RemoteNode, level: str = "study", filters: QueryFilters | None = None,
         client: WebClient | None = None, page: int = QIDO_PAGE) -> list[dict[str, str]]:
    """QIDO-RS at ``level`` ("study", "series", "image"): each match as {PS3.3 keyword: text} with the keys of
    ``RETURN_KEYS[level]`` the server gave, as :func:`.query.query` answers for C-FIND. Pages of ``page``
    results (limit/offset) until one comes back short. Raises NetworkError (HTTP status and what to check)."""
    check_level(level)
    filters = filters or QueryFilters()
    own = client is None
    client = client or WebClient(node)
    try:
        keys = matching_keys(level, filters)
        # a study (and, for instances, a series) UID narrows the resource; at its own level it is a matching key
        study = keys.pop("StudyInstanceUID", "") if level != "study" else ""
        series = keys.pop("SeriesInstanceUID", "") if level == "image" and study else ""
        path = qido_path(level, study, series)
        # QIDO has no "any of these values" but for UID lists (PS3.18 8.3.4.1): a multi-valued key (CT\MR) is
        # asked once per value, the answers merged (one row per study/series/instance)
        multi = next((k for k, v in keys.items() if "\\" in v), "")
        results: dict[str, dict[str, str]] = {}
        for value in keys[multi].split("\\") if multi else [""]:
            one = {**keys, multi: value} if multi else keys
            for row in _qido_all(client, level, path, one, page):
                results.setdefault(row.get(_UID_KEY[level], str(len(results))), row)
        return list(results.values())
    finally:
        if own:
            client.close()


def _qido_all(client: WebClient, level: str, path: str, keys: dict[str, str], page: int) -> list[dict[str, str]]:
    """Every answer of one QIDO-RS query (single-valued ``keys``), page after page, matched here where the
    server could not be sent a value as it is."""
    needs_encoding = any(not all(c in _UNRESERVED or c in "*?" for c in v) for v in keys.values())
    query, check_here = qido_params(keys, decodes_percent(client) if needs_encoding else True)
    fields = "&".join(f"includefield={keyword}" for keyword in RETURN_KEYS[level])
    results: list[dict[str, str]] = []
    offset = 0
    while True:
        answers = qido_page(client, path, "&".join(p for p in (query, fields, f"limit={page}", f"offset={offset}")
                                                   if p))
        for answer in answers:
            row = dicom_json_row(answer, RETURN_KEYS[level])
            if all(wildcard_match(v, row.get(k, "")) for k, v in check_here.items()):
                results.append(row)
        if len(answers) < page:
            return results
        offset += len(answers)


def qido_page(client: WebClient, path: str, query: str) -> list[dict]:
    """One QIDO-RS request: the DICOM JSON answers (204 No Content: none)."""
    url = client.url("qido", path, query)
    response = client.request("GET", url, "QIDO-RS", headers={"Accept": DICOM_JSON})
    if response.status_code == 204 or not response.content.strip():
        return []
    try:
        answers = response.json()
    except ValueError:
        raise NetworkError(f"QIDO-RS: {url} did not answer DICOM JSON (is it a DICOMweb base URL?)") from None
    return answers if isinstance(answers, list) else []


def dicom_json_row(answer: dict, keywords: list[str]) -> dict[str, str]:
    """The values of ``keywords`` in one DICOM JSON object (PS3.18 F.2) as text: multiple values joined by
    backslash, person names by their alphabetic group."""
    from pydicom.datadict import tag_for_keyword

    row = {}
    for keyword in keywords:
        element = answer.get(f"{tag_for_keyword(keyword):08X}")
        if element is None:
            continue
        values = [v.get("Alphabetic", "") if isinstance(v, dict) else v for v in element.get("Value", [])]
        row[keyword] = answer_text(values)
    return row


# ---- echo ---------------------------------------------------------------------------------------------------

@dataclass
class WebEchoResult:
    """The DICOMweb counterpart of a C-ECHO: a QIDO-RS for one study answered (``ok``), in one sentence."""

    ok: bool
    message: str
    seconds: float = 0.0

    def summary(self) -> str:
        return self.message


def web_echo(node: RemoteNode) -> WebEchoResult:
    """Ask the node for one study (QIDO-RS ``studies?limit=1``): reachability, TLS, credentials and QIDO in one
    request. Never raises NetworkError/NodeError: a failure is the result's sentence."""
    from ..errors import DicomtuiError

    start = time.monotonic()
    try:
        with WebClient(node) as client:
            qido_page(client, "studies", "limit=1")
    except DicomtuiError as exc:
        return WebEchoResult(False, str(exc))
    seconds = time.monotonic() - start
    return WebEchoResult(True, f"{node.url} answers QIDO-RS ({seconds * 1000:.0f} ms)", seconds)
