"""Forwarding rules (routes.toml) and the forward queue (forward-queue.sqlite), without peers: what matches, what is
refused in the file, when a study rule's forward is due, how retries back off (issue 20)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dicomtui.cli import main
from dicomtui.core.errors import NodeError, SettingsError
from dicomtui.core.forward import RetryPolicy, Route, destinations, load_routes, routes_file
from dicomtui.core.net.forward_queue import ForwardQueue, queue_counts
from dicomtui.core.net.forwarder import Forwarder
from dicomtui.core.net.nodes import LocalNode, Nodes

from .test_net_loopback import _wait

CT = {"Modality": "CT", "StudyDescription": "Thorax^Routine", "SeriesDescription": "AX 1.0 mm",
      "PatientID": "RES-0042"}


def test_a_rule_without_conditions_matches_everything() -> None:
    assert Route("pacs").matches({}, None) and Route("pacs").matches(CT, "ANY")


@pytest.mark.parametrize(("rule", "calling", "expected"), [
    (Route("p", calling_ae=["CT1"]), "CT1", True),
    (Route("p", calling_ae=["CT1"]), "CT2", False),
    (Route("p", calling_ae=["CT1"]), None, False),  # caller not known (indexed after a crash): no match
    (Route("p", modality=["mr", "ct"]), "X", True),
    (Route("p", modality=["MR"]), "X", False),
    (Route("p", study_description="thorax*"), "X", True),  # any case, the whole value
    (Route("p", study_description="routine"), "X", False),
    (Route("p", series_description="AX ? mm"), "X", False),
    (Route("p", series_description="AX *mm"), "X", True),
    (Route("p", patient_id_prefix="RES-"), "X", True),
    (Route("p", patient_id_prefix="res-"), "X", False),  # PatientID is matched as written
    (Route("p", modality=["CT"], patient_id_prefix="OTHER"), "X", False),  # every condition must hold
])
def test_each_condition_must_match(rule: Route, calling: str | None, expected: bool) -> None:
    assert rule.matches(CT, calling) is expected


def test_one_forward_per_node_however_many_rules_match() -> None:
    rules = [Route("a", modality=["CT"]), Route("a", when="study"), Route("b", modality=["MR"]), Route("c")]
    found = destinations(rules, CT, "X")
    assert list(found) == ["a", "c"] and found["a"].when == "instance"
    rules = [Route("a"), Route("a", patient_id_prefix="RES-", deidentify=True)]
    assert destinations(rules, CT, "X")["a"].deidentify  # privacy wins over the order of the rules
    assert not destinations(rules, {**CT, "PatientID": "P1"}, "X")["a"].deidentify
    assert not rules[0].deidentify  # the rule itself is unchanged


def _config() -> Path:
    path = routes_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.parametrize(("text", "words"), [
    ('[[route]]\nto = "a"\nmodaliti = ["CT"]\n', "unknown key(s) modaliti"),
    ('[[route]]\nmodality = ["CT"]\n', "'to' must name a node"),
    ('[[route]]\nto = "a"\nmodality = "CT"\n', "'modality' must be a list"),
    ('[[route]]\nto = "a"\nwhen = "daily"\n', "'when' must be one of instance, study"),
    ('[[route]]\nto = "a"\nidle_s = "soon"\n', "not a duration"),
    ('[[route]]\nto = "a"\ndeidentify = "yes"\n', "'deidentify' must be true or false"),
    ('[retry]\nmax_tries = 0\n', "max_tries must be a whole number"),
    ('[routes]\n', "unknown setting(s) routes"),
    ('[[route]\n', "not valid TOML"),
])
def test_a_bad_routes_file_is_one_sentence_naming_it(text: str, words: str) -> None:
    _config().write_text(text)
    with pytest.raises(SettingsError, match="routes.toml") as caught:
        load_routes()
    assert words in str(caught.value)


def test_routes_file_durations_and_policy() -> None:
    _config().write_text('[retry]\nmax_tries = 3\ncap_s = "2m"\n\n[[route]]\nto = "a"\nwhen = "study"\n'
                         'idle_s = "90s"\n')
    routes = load_routes()
    assert routes.rules == [Route("a", when="study", idle_s=90.0)]
    assert routes.retry.max_tries == 3 and routes.retry.cap_s == 120.0
    assert [RetryPolicy(first_s=5, cap_s=30).delay(n) for n in (1, 2, 3, 4, 5)] == [5, 10, 20, 30, 30]


def test_route_add_ls_rm_through_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["route", "add", "--to", "pacs"]) == 2
    assert "no node named pacs" in capsys.readouterr().err
    assert main(["nodes", "add", "pacs", "PACS@127.0.0.1:104"]) == 0
    assert main(["route", "add", "--to", "pacs", "--modality", "CT,MR", "--calling-ae", "CT1", "--when", "study",
                 "--idle", "2m"]) == 0
    assert main(["route", "add", "--to", "pacs", "--patient-id-prefix", "RES-"]) == 0
    capsys.readouterr()
    assert main(["route", "ls", "--json"]) == 0
    rules = json.loads(capsys.readouterr().out)
    assert rules[0] == {"to": "pacs", "calling_ae": ["CT1"], "modality": ["CT", "MR"], "study_description": "",
                        "series_description": "", "patient_id_prefix": "", "when": "study", "idle_s": 120.0,
                        "deidentify": False, "profile_options": []}
    assert main(["route", "rm", "1"]) == 0 and main(["route", "rm", "5"]) == 2
    capsys.readouterr()
    assert main(["route", "ls"]) == 0
    assert capsys.readouterr().out == "1\tPatientID starting 'RES-' → pacs, each instance at once\n"
    assert main(["route", "policy", "--max-tries", "4", "--cap", "1h"]) == 0
    assert load_routes().retry.max_tries == 4 and load_routes().retry.cap_s == 3600.0
    assert Path(os.environ["XDG_CONFIG_HOME"], "dicomtui", "routes.toml").exists()


def _row(n: int, study: str = "1.2.3") -> dict[str, str]:
    return {"SOPInstanceUID": f"1.2.3.{n}", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.2",
            "TransferSyntaxUID": "1.2.840.10008.1.2.1", "StudyInstanceUID": study, "path": f"/x/{n}.dcm"}


def test_a_study_rule_is_due_once_its_study_is_idle(tmp_path: Path) -> None:
    with ForwardQueue(tmp_path) as queue:
        queue.enqueue([(_row(1), "a", "CT1", 30.0)], now=1000.0)
        queue.enqueue([(_row(2), "a", "CT1", 30.0)], now=1020.0)  # the study still arrives: both wait
        queue.enqueue([(_row(9, "other"), "a", "CT1", 0.0)], now=1020.0)  # an instance rule: at once
        assert [f.SOPInstanceUID for f in queue.due(now=1040.0)] == ["1.2.3.9"]
        assert [f.SOPInstanceUID for f in queue.due(now=1050.0)] == ["1.2.3.9", "1.2.3.1", "1.2.3.2"]


def test_queued_again_only_when_received_again(tmp_path: Path) -> None:
    with ForwardQueue(tmp_path) as queue:
        assert queue.enqueue([(_row(1), "a", None, 0.0)], now=1.0) == 1
        forward = queue.due(now=2.0)[0]
        queue.mark_sent(forward.id)
        assert queue.enqueue([(_row(1), "a", None, 0.0)], again=False, now=3.0) == 0  # indexed after a crash
        assert queue.counts() == {"a": {"sent": 1}}
        assert queue.enqueue([(_row(1), "a", None, 0.0)], now=4.0) == 1  # the sender sent it once more
        assert queue.counts() == {"a": {"pending": 1}}


def test_failures_back_off_then_fail_and_retry_renews(tmp_path: Path) -> None:
    with ForwardQueue(tmp_path) as queue:
        queue.enqueue([(_row(1), "a", None, 0.0), (_row(2), "b", None, 0.0)], now=0.0)
        a, b = queue.due(now=0.0)
        queue.mark_failed_try(a.id, "peer down", 5.0, now=10.0)
        queue.mark_failed_try(b.id, "refused", None, now=10.0)
        assert queue.due(now=14.0) == [] and [f.tries for f in queue.due(now=15.0)] == [1]
        assert [(f.state, f.last_error) for f in queue.listing()] == [("failed", "refused"), ("pending", "peer down")]
        assert queue.retry(["a"]) == 0 and queue.retry(["b"]) == 1
    assert queue_counts(tmp_path) == {"a": {"pending": 1}, "b": {"pending": 1}}
    assert queue_counts(tmp_path / "none") == {}


def test_old_sent_rows_are_forgotten(tmp_path: Path) -> None:
    with ForwardQueue(tmp_path) as queue:
        queue.enqueue([(_row(n), "a", None, 0.0) for n in range(3)], now=0.0)
        first, second, third = queue.due(now=0.0)
        queue.mark_sent(first.id, now=100.0)
        queue.mark_sent(second.id, now=200.0)
        assert queue.forget_sent(150.0) == 1
        assert queue.counts() == {"a": {"pending": 1, "sent": 1}}


def test_a_broken_nodes_file_pauses_forwarding_and_loses_nothing(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> Nodes:
        raise NodeError("nodes.toml: not valid TOML")

    with ForwardQueue(tmp_path) as queue:
        queue.enqueue([(_row(1), "a", None, 0.0)])
    forwarder = Forwarder(tmp_path, LocalNode(), nodes=broken)
    forwarder.start()
    try:
        assert _wait(lambda: "forwarding paused for 2 s: nodes.toml: not valid TOML" in caplog.text)
    finally:
        forwarder.stop()
    with ForwardQueue(tmp_path) as queue:
        assert [(f.state, f.tries) for f in queue.listing()] == [("pending", 0)]
