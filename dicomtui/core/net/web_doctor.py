"""Check a DICOMweb node step by step, each result a sentence (the DIMSE checks are :mod:`.doctor`'s): the network
(TCP to the URL's host and port), TLS (an https URL: the handshake with the node's CA file), QIDO-RS (one study:
the credentials and the base URL), WADO-RS (one instance, read and dropped) and STOW-RS (an empty request,
stores nothing: is POST offered, are we allowed).
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from ..errors import DicomtuiError
from .associate import PROBE_S, connect_seconds
from .doctor import Check, DoctorReport
from .nodes import RemoteNode
from .web import DICOM_JSON, WebClient, qido_page
from .web_wado import ACCEPT

WEB_STEPS = ("network", "tls", "qido", "wado", "stow")


def web_doctor(node: RemoteNode) -> DoctorReport:
    """Run the checks of WEB_STEPS in order; after a failure the later ones are "not tried" (ok None). Never
    raises a DicomtuiError: each failure is its check's sentence."""
    report = DoctorReport(node.name, node.url, "", 0)
    checks = report.checks
    parts = urlsplit(node.url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    checks.append(_network(host, port, node))
    if checks[-1].ok:
        checks.append(_tls(host, port, node) if parts.scheme == "https"
                      else Check("tls", None, "plain http: nothing is encrypted (use https beyond this machine)"))
    if checks[-1].ok is not False:
        try:
            client = WebClient(node)
        except DicomtuiError as exc:  # a credential file or variable cannot be read
            checks.append(Check("qido", False, str(exc)))
        else:
            with client:
                checks += _web_checks(client)
    checks += [Check(name, None, "not tried") for name in WEB_STEPS[len(checks):]]
    return report


def _network(host: str, port: int, node: RemoteNode) -> Check:
    try:
        socket.getaddrinfo(host, port)
        seconds = connect_seconds(host, port, min(node.timeout, PROBE_S))
    except OSError as exc:
        return Check("network", False, f"cannot connect to {host}:{port}: {exc.strerror or exc} — is the server "
                                       f"running, is this the right port, is a firewall between?")
    return Check("network", True, f"{host}:{port} accepts TCP connections ({seconds * 1000:.0f} ms)")


def _tls(host: str, port: int, node: RemoteNode) -> Check:
    import ssl

    try:
        context = ssl.create_default_context(cafile=node.tls_ca or None)
        if not node.tls_verify:
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        with socket.create_connection((host, port), timeout=node.timeout) as raw, \
                context.wrap_socket(raw, server_hostname=host) as tls:
            version = tls.version()
    except (OSError, ssl.SSLError) as exc:
        return Check("tls", False, f"the TLS handshake with {host}:{port} failed ({exc}): check the node's CA file "
                                   f"(--tls-ca) and that {host} is the name its certificate gives")
    checked = "certificate checked" if node.tls_verify else "certificate NOT checked (tls_verify false)"
    return Check("tls", True, f"{version}, {checked}")


def _web_checks(client: WebClient) -> list[Check]:
    """QIDO-RS, WADO-RS, STOW-RS: the last three checks (fewer when QIDO fails)."""
    try:
        studies = qido_page(client, "studies", "limit=1")
        instances = qido_page(client, "instances", "limit=1") if studies else []
    except DicomtuiError as exc:
        return [Check("qido", False, str(exc))]
    checks = [Check("qido", True, f"QIDO-RS answered ({'studies found' if studies else 'no study yet'})")]
    checks.append(_wado(client, instances[0] if instances else None))
    checks.append(_stow(client))
    return checks


def _value(answer: dict, tag: str) -> str:
    values = answer.get(tag, {}).get("Value", [])
    return str(values[0]) if values else ""


def _wado(client: WebClient, instance: dict | None) -> Check:
    if instance is None:
        return Check("wado", None, "the server listed no instance to fetch: cannot test WADO-RS")
    path = (f"studies/{_value(instance, '0020000D')}/series/{_value(instance, '0020000E')}/instances/"
            f"{_value(instance, '00080018')}")
    try:
        response = client.request("GET", client.url("wado", path), "WADO-RS", headers={"Accept": ACCEPT}, stream=True)
        with response:
            size = sum(len(chunk) for chunk in response.iter_content(1 << 20))
    except DicomtuiError as exc:
        return Check("wado", False, str(exc))
    except OSError as exc:
        return Check("wado", False, f"WADO-RS: the transfer of one instance broke off ({exc})")
    return Check("wado", True, f"one instance fetched ({size / 1e3:.0f} kB of multipart/related)")


def _stow(client: WebClient) -> Check:
    """An empty STOW-RS request (the closing delimiter only): nothing is stored; 2xx, 400 or 409 say the server
    takes STOW-RS requests at this URL and lets us send."""
    url = client.url("stow", "studies")
    boundary = "dicomtui-doctor"
    try:
        response = client.request("POST", url, "STOW-RS", data=f"--{boundary}--\r\n".encode(), ok={400, 409},
                                  headers={"Content-Type": f'multipart/related; type="application/dicom"; '
                                                           f"boundary={boundary}", "Accept": DICOM_JSON})
    except DicomtuiError as exc:
        absent = "HTTP 404" in str(exc) or "HTTP 405" in str(exc)
        return Check("stow", False, f"{exc}{' — the server may not offer STOW-RS' if absent else ''}")
    response.close()
    return Check("stow", True, f"an empty STOW-RS request was answered HTTP {response.status_code} (nothing stored)")
