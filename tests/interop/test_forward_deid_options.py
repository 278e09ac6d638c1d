"""Profile options per forwarding rule (issue 20 with issue 17): ``route add --deidentify --profile-option …`` is
stored in routes.toml, queued with each forward and used by the forwarder; a rule without options sends the plain
Basic Profile. Real peers: storescu → our listener → two DCMTK storescp."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from dicomtui.cli import main
from dicomtui.core.errors import SettingsError
from dicomtui.core.export.deid_mapping import database_mapping
from dicomtui.core.export.deidentify import shifted_date
from dicomtui.core.forward import Route, Routes, destinations, load_routes, save_routes
from dicomtui.core.net.forward_queue import ForwardQueue
from dicomtui.core.net.forwarder import Forwarding, check_routes
from dicomtui.core.net.listener import Listener
from dicomtui.core.net.nodes import LocalNode
from dicomtui.core.synth import SeriesSpec, write_series
from tests.conftest import require_program
from tests.interop.test_dimse import free_port
from tests.interop.test_forward_dcmtk import _sent_uids, _stop, _storescp, _storescu, _wait_for

pytestmark = pytest.mark.interop


def test_each_rule_de_identifies_with_its_own_profile_options(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    require_program("storescu", "dcmtk")
    require_program("storescp", "dcmtk")
    kept_port, plain_port = free_port(), free_port()
    assert main(["nodes", "add", "kept", f"REF@127.0.0.1:{kept_port}"]) == 0
    assert main(["nodes", "add", "plain", f"REF@127.0.0.1:{plain_port}"]) == 0
    assert main(["route", "add", "--to", "kept", "--deidentify", "--profile-option", "modified-dates",
                 "--profile-option", "patient-characteristics"]) == 0
    assert main(["route", "add", "--to", "plain", "--deidentify"]) == 0
    capsys.readouterr()
    assert main(["route", "ls"]) == 0
    assert "kept de-identified (modified-dates, patient-characteristics)" in capsys.readouterr().out
    assert load_routes().rules[0].profile_options == ["modified-dates", "patient-characteristics"]

    study = tmp_path / "study"
    write_series(study, SeriesSpec(slices=3, rows=16, cols=16, patient_id="SECRET-8", patient_name="Roe^Rita",
                                   sex="F", study_date="20240115"))
    root = tmp_path / "db"
    outs = {name: tmp_path / name for name in ("kept", "plain")}
    procs = [_storescp(outs["kept"], kept_port), _storescp(outs["plain"], plain_port)]
    try:
        with Listener(root, LocalNode(ae_title="DICOMTUI", port=0, bind="127.0.0.1"),
                      forward=Forwarding(load_routes(), LocalNode())) as listener:
            _storescu(study, listener.port)
            with ForwardQueue(root) as queue:
                assert _wait_for(lambda: queue.counts() == {"kept": {"sent": 3}, "plain": {"sent": 3}})
    finally:
        for proc in procs:
            _stop(proc)
    received = {name: [pydicom.dcmread(p) for p in out.iterdir()] for name, out in outs.items()}
    patient = database_mapping(root).known_patient("SECRET-8")
    assert patient is not None
    originals = _sent_uids(study)
    for datasets in received.values():  # the same pseudonym and UIDs whatever the options
        assert len(datasets) == 3 and {str(d.PatientID) for d in datasets} == {patient.pseudonym}
        assert not {str(d.SOPInstanceUID) for d in datasets} & originals
    kept, plain = received["kept"][0], received["plain"][0]
    assert kept.StudyDate == shifted_date("20240115", patient.offset_days) != "20240115"
    assert kept.LongitudinalTemporalInformationModified == "MODIFIED" and kept.PatientSex == "F"
    assert {c.CodeValue for c in kept.DeidentificationMethodCodeSequence} == {"113100", "113107", "113108"}
    assert plain.get("StudyDate", "") in ("", "19000101") and plain.get("PatientSex", "") in ("", None)
    assert plain.LongitudinalTemporalInformationModified == "REMOVED"
    assert {c.CodeValue for c in plain.DeidentificationMethodCodeSequence} == {"113100"}
    assert {str(d.SOPInstanceUID) for d in received["kept"]} == {str(d.SOPInstanceUID) for d in received["plain"]}


def test_profile_options_are_checked_and_the_strictest_combination_wins(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nodes", "add", "ref", "REF@127.0.0.1:11112"]) == 0
    assert main(["route", "add", "--to", "ref", "--profile-option", "modified-dates"]) == 2
    assert "add --deidentify" in capsys.readouterr().err
    save_routes(Routes([Route("ref", deidentify=True, profile_options=["modified-datez"])]))
    with pytest.raises(SettingsError, match="route 1: unknown profile option.s. modified-datez"):
        Forwarding(load_routes(), LocalNode())
    save_routes(Routes([Route("ref", profile_options=["modified-dates"])]))
    with pytest.raises(SettingsError, match="route 1: 'profile_options' are options of de-identification"):
        load_routes()
    # two de-identifying rules to one node: only the options both name (each option keeps more)
    rules = [Route("ref"), Route("ref", deidentify=True, profile_options=["modified-dates", "safe-private"]),
             Route("ref", deidentify=True, profile_options=["safe-private", "retain-uids"])]
    chosen = destinations(check_routes(Routes(rules)).rules, {"Modality": "CT"}, None)["ref"]
    assert chosen.deidentify and chosen.profile_options == ["safe-private"]


def test_a_queue_file_of_the_first_version_gains_the_options_column(tmp_path: Path) -> None:
    import sqlite3

    from dicomtui.core.net.forward_queue import _SCHEMA, queue_path

    first = "\n".join(line for line in _SCHEMA.splitlines() if "deid_options" not in line)
    with sqlite3.connect(queue_path(tmp_path)) as conn:  # the first version's table: no deid_options column
        conn.executescript(first)
        assert "deid_options" not in {r[1] for r in conn.execute("PRAGMA table_info(forwards)")}
        conn.execute("INSERT INTO forwards (destination, SOPInstanceUID, SOPClassUID, TransferSyntaxUID, "
                     "StudyInstanceUID, path, state, next_try, deidentify, received_at) "
                     "VALUES ('ref', '1.2', '1.2.840.10008.5.1.4.1.1.2', '', '1.3', '/x', 'pending', 0, 1, 0)")
    with ForwardQueue(tmp_path) as queue:
        [old] = queue.due()
        assert old.deidentify and old.deid_options == ""
        queue.enqueue([({"SOPInstanceUID": "1.4", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.2",
                         "StudyInstanceUID": "1.3", "path": "/y"}, "ref", None, 0.0, True, ["safe-private"])])
        assert [r.deid_options for r in queue.due()] == ["", "safe-private"]
