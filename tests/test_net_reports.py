"""Each network report's summary() is the text the CLI prints today (cmd_echo, cmd_send, cmd_retrieve,
cmd_doctor in dicomtui/cli.py), and every status / rejection is worded in one place (core/net/status.py)."""

from __future__ import annotations

import pynetdicom.status

from dicomtui.core.net.doctor import Check, DoctorReport
from dicomtui.core.net.echo import EchoResult
from dicomtui.core.net.retrieve import RetrieveReport
from dicomtui.core.net.send import SendItem, SendReport
from dicomtui.core.net.status import (
    REJECT_BUSY,
    REJECT_CALLING_AE,
    Service,
    Status,
    category,
    qr_meaning,
    reject_reason,
    status_meaning,
)


def test_echo_summary_is_its_message() -> None:
    assert EchoResult(True, "PACS@h:104 answers C-ECHO (3 ms)", 0.003).summary() == "PACS@h:104 answers C-ECHO (3 ms)"


def test_send_summary_counts_then_lists_what_did_not_succeed() -> None:
    report = SendReport("PACS@h:104", [
        SendItem("1.1", "/a", 0x0000, status_meaning(0x0000)),
        SendItem("1.2", "/b", 0xB000, status_meaning(0xB000)),
        SendItem("1.3", "/c", 0xA700, status_meaning(0xA700)),
        SendItem("1.4", "/d", None, "no answer (timeout or abort: gone)"),
    ], error="PACS@h:104 ended the association after 4 of 6 instances", notes=["reconnected once"])
    assert report.summary() == (
        "sent to PACS@h:104: 1 succeeded, 1 with warnings, 2 failed\n"
        "  warning\t1.2\t0xB000 Warning: Coercion of Data Elements\n"
        "  failure\t1.3\t0xA700 Failure: Refused: Out of Resources\n"
        "  failure\t1.4\tno answer (timeout or abort: gone)")
    assert report.problems() == ["note: reconnected once", "PACS@h:104 ended the association after 4 of 6 instances"]
    assert SendReport("X@h:1").summary() == "sent to X@h:1: 0 succeeded, 0 with warnings, 0 failed"
    assert SendReport("X@h:1").problems() == []


def test_retrieve_summary() -> None:
    report = RetrieveReport("PACS@h:104", "move", requested=10, already_here=4, completed=5, failed=1, warning=0,
                            errors=["PACS@h:104: some sub-operations failed (1 failed, 5 completed)"])
    assert report.summary() == "move from PACS@h:104: 5 retrieved, 4 already here, 1 failed, 0 with warnings (of 10)"
    assert report.problems() == report.errors


def test_doctor_summary_and_its_checks() -> None:
    report = DoctorReport("pacs", "PACS@h:104", "DICOMTUI", 11112, [
        Check("network", True, "h:104 accepts TCP connections (1 ms)"),
        Check("echo", False, "PACS@h:104 rejected the association: …"),
        Check("query", None, "not tried"),
        Check("move to us", None, "not tried"),
    ])
    assert report.summary() == (
        "pacs (PACS@h:104), from DICOMTUI (listening on port 11112):\n"
        "  ok   network     h:104 accepts TCP connections (1 ms)\n"
        "  FAIL echo        PACS@h:104 rejected the association: …\n"
        "  --   query       not tried\n"
        "  --   move to us  not tried")
    assert [c.ok for c in report] == [True, False, None, None] and report[1].name == "echo" and len(report) == 4
    assert not report.ok


def test_status_codes_are_named_as_pynetdicom_names_them() -> None:
    for name in ("SUCCESS", "CANCEL", "PENDING", "MOVE_DESTINATION_UNKNOWN"):
        assert Status[name] == getattr(pynetdicom.status.Status, name)
    assert category(0xA700) == "failure" and category(0xB000) == "warning" and category(0) == "success"
    assert status_meaning(0xA700) == "0xA700 Failure: Refused: Out of Resources"
    assert status_meaning(0x0000) == "0x0000 Success"
    assert qr_meaning(0xA801, Service.MOVE) == "status 0xA801 (Failure: Move destination unknown)"
    assert qr_meaning(0xC123, "find").startswith("status 0xC123 (Failure")


def test_rejections_say_what_to_check() -> None:
    _result, source, reason = REJECT_CALLING_AE
    assert "add it to the peer's list of known nodes" in reject_reason(source, reason)
    _result, source, reason = REJECT_BUSY
    assert "try again later" in reject_reason(source, reason)
    assert reject_reason(9, 9) == "source 9, reason 9"
