"""The bytes our lean SCP/SCU write by hand (core/net/wire.py), checked against pydicom's and pynetdicom's encoders."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pynetdicom.dsutils import decode

from dicomtui.core.net import scu, wire
from dicomtui.core.synth import SeriesSpec, write_series


@pytest.mark.parametrize("instance", ["1.2.3.4", "1.2.3.45", "1.2.840.113619.2.55.3.604688119.969.1268071029.320"])
@pytest.mark.parametrize("source_ae", ["STORESCU", "ODD", ""])
def test_file_meta_is_what_pydicom_writes(instance: str, source_ae: str) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    meta.MediaStorageSOPInstanceUID = instance
    meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.90"
    meta.ImplementationClassUID = wire.IMPLEMENTATION_UID
    meta.ImplementationVersionName = wire.IMPLEMENTATION_VERSION
    if source_ae:
        meta.SourceApplicationEntityTitle = source_ae
    expected = BytesIO()
    expected.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(expected, meta, enforce_standard=True)
    assert wire.file_meta("1.2.840.10008.5.1.4.1.1.4", instance, "1.2.840.10008.1.2.4.90", source_ae) == \
        expected.getvalue()


def test_command_sets_decode_as_pynetdicom_reads_them() -> None:
    raw = wire.response(wire.C_STORE_RSP, "1.2.840.10008.5.1.4.1.1.2", 7, 0xA700, "1.2.3.4.5")
    ds = decode(BytesIO(raw), True, True)
    assert ds.CommandField == 0x8001 and ds.MessageIDBeingRespondedTo == 7 and ds.Status == 0xA700
    assert ds.AffectedSOPClassUID == "1.2.840.10008.5.1.4.1.1.2" and ds.AffectedSOPInstanceUID == "1.2.3.4.5"
    assert ds.CommandGroupLength == len(raw) - 12 and ds.CommandDataSetType == 0x0101
    fields = wire.decode_command(raw)
    assert wire.u16(fields[0x0900]) == 0xA700 and wire.uid_text(fields[0x1000]) == "1.2.3.4.5"


def test_malformed_command_sets_abort() -> None:
    with pytest.raises(wire.AbortAssociation):
        wire.decode_command(b"\x00\x00\x00\x01\xff\x00\x00\x00")  # a length beyond the data
    with pytest.raises(wire.AbortAssociation):
        wire.decode_command(b"\x08\x00\x16\x00\x02\x00\x00\x001\x00")  # not group 0000


def test_dataset_offset_finds_where_the_dataset_starts(tmp_path: Path) -> None:
    path = write_series(tmp_path, SeriesSpec(slices=1))[0]
    data, offset, transfer = scu.read_for_sending(path)
    assert transfer == pydicom.dcmread(path).file_meta.TransferSyntaxUID
    reread = decode(BytesIO(bytes(data[offset:])), False, True)
    assert reread.SOPInstanceUID == pydicom.dcmread(path).SOPInstanceUID
    (tmp_path / "raw.dcm").write_bytes(data[offset:])  # no preamble, no meta
    assert scu.read_for_sending(tmp_path / "raw.dcm") is None


def test_store_request_decodes_as_pynetdicom_reads_it() -> None:
    raw = wire.store_request("1.2.840.10008.5.1.4.1.1.2", "1.2.3.45", 9)
    ds = decode(BytesIO(raw), True, True)
    assert ds.CommandField == wire.C_STORE_RQ and ds.MessageID == 9 and ds.Priority == 0
    assert ds.AffectedSOPClassUID == "1.2.840.10008.5.1.4.1.1.2" and ds.AffectedSOPInstanceUID == "1.2.3.45"
    assert ds.CommandDataSetType != wire.NO_DATASET and ds.CommandGroupLength == len(raw) - 12


def test_one_fragment_in_a_p_data_pdu() -> None:
    command = wire.response(wire.C_ECHO_RSP, wire.VERIFICATION, 3, 0)
    pdu = wire.p_data(1, command)
    assert pdu == wire.pdv_header(1, len(command), 0x03) + command
    kind, length = wire.PDU_HEADER.unpack_from(pdu)
    assert kind == wire.P_DATA and length == len(pdu) - 6
    assert wire.PDV_HEADER.unpack_from(pdu, 6) == (len(command) + 2, 1, 0x03)
