"""The WADO-RS multipart reader: parts come out whole however the body is cut into chunks; a body that stops
early discards the open part; QIDO value encoding for servers that do not decode percent-encoding."""

from __future__ import annotations

import pytest

from dicomtui.core.net.web import qido_params, wildcard_match
from dicomtui.core.net.web_wado import PartSink, _boundary, read_parts


class Collect(PartSink):
    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.current: bytearray | None = None
        self.aborted = 0

    def start(self) -> None:
        self.current = bytearray()

    def data(self, view: memoryview) -> None:
        assert self.current is not None
        self.current += view

    def end(self) -> bool:
        assert self.current is not None
        self.parts.append(bytes(self.current))
        self.current = None
        return True

    def abort(self) -> None:
        self.aborted += 1
        self.current = None


PARTS = [b"DICM\x00\r\n--notquite\r\n" * 3, b"", b"x" * 5000 + b"\r\n-", b"\r\n--b0undar"]
BODY = (b"preamble\r\n" + b"".join(b"--b0undary\r\nContent-Type: application/dicom\r\n\r\n" + p + b"\r\n"
                                  for p in PARTS) + b"--b0undary--\r\nepilogue")


@pytest.mark.parametrize("size", [1, 2, 3, 7, 13, 64, 4096, len(BODY)])
def test_parts_come_out_whole_whatever_the_chunks(size: int) -> None:
    sink = Collect()
    chunks = [BODY[i : i + size] for i in range(0, len(BODY), size)]
    assert read_parts(chunks, b"b0undary", sink) is True
    assert sink.parts == PARTS and sink.aborted == 0


def test_a_body_that_stops_early_discards_the_open_part() -> None:
    sink = Collect()
    cut = BODY.index(b"x" * 100)
    assert read_parts([BODY[:cut]], b"b0undary", sink) is False
    assert sink.parts == PARTS[:2] and sink.aborted == 1


def test_boundary_from_the_content_type() -> None:
    assert _boundary('multipart/related; type="application/dicom"; boundary="a b"') == b"a b"
    assert _boundary("multipart/related; boundary=xyz") == b"xyz"
    assert _boundary("application/json") is None


def test_qido_values_for_a_server_that_does_not_decode_percent_encoding() -> None:
    query, here = qido_params({"PatientName": "*Müller^H*", "StudyDate": "20240101-20241231"}, decodes=False)
    assert query == "PatientName=*M*ller?H*&StudyDate=20240101-20241231"
    assert here == {"PatientName": "*Müller^H*"}
    query, here = qido_params({"PatientName": "*Müller^H*"}, decodes=True)
    assert query == "PatientName=*M%C3%BCller%5EH*" and here == {}
    assert wildcard_match("*müller*", "MÜLLER^HANS") and not wildcard_match("*müller*", "Mÿller^Hans")
    assert wildcard_match("a[b]?", "a[b]c")
