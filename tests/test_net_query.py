"""The protocol-neutral query model (matching keys, the C-FIND identifier) and the retrieve plan ("what is
missing here"), without a peer."""

from __future__ import annotations

import pytest

from dicomtui.core.errors import NetworkError
from dicomtui.core.net.query import RETURN_KEYS, QueryFilters, QueryLevel, build_query, date_range, matching_keys
from dicomtui.core.net.retrieve import RetrievePlan


def test_matching_keys_use_dicom_wildcards_and_ranges() -> None:
    filters = QueryFilters(name="müller", date="2024-01-01..2024-02-01", modality="ct, mr", description="head")
    assert matching_keys("study", filters) == {"PatientName": "*müller*", "StudyDate": "20240101-20240201",
                                               "ModalitiesInStudy": "CT\\MR", "StudyDescription": "*head*"}
    assert matching_keys("series", QueryFilters(name="M?ller", modality="CT", study_uid="1.2")) == {
        "PatientName": "M?ller", "Modality": "CT", "StudyInstanceUID": "1.2"}
    assert date_range("20240101-20240201") == "20240101-20240201" and date_range("2024-01-31") == "20240131"


def test_the_c_find_identifier_asks_for_every_return_key() -> None:
    ds = build_query("series", QueryFilters(series_uid="1.2.3"), "ISO_IR 192")
    assert ds.QueryRetrieveLevel == "SERIES" and ds.SpecificCharacterSet == "ISO_IR 192"
    assert ds.SeriesInstanceUID == "1.2.3"
    assert all(keyword in ds for keyword in RETURN_KEYS["series"])
    assert QueryLevel("image").qr_level == "IMAGE" and QueryLevel.STUDY == "study"
    with pytest.raises(NetworkError, match="level must be one of study, series, image"):
        build_query("patient", QueryFilters(), "ISO_IR 100")


def test_the_plan_lists_per_series_what_is_at_the_peer_and_missing_here() -> None:
    here = {"1.1.1", "1.2.1", "1.2.2"}
    images = [{"StudyInstanceUID": "S", "SeriesInstanceUID": a, "SOPInstanceUID": f"{a}.{i}"}
              for a in ("1.1", "1.2") for i in (1, 2)]
    plan = RetrievePlan()
    plan.add("STUDY", "S", images, here.__contains__)
    plan.add("SERIES", "T.9", [], here.__contains__)  # the peer would not list its images: all of it
    assert [(t.level, t.study_uid, t.series_uid, t.at_peer, t.missing, t.needed) for t in plan.targets] == [
        ("IMAGE", "S", "1.1", ["1.1.1", "1.1.2"], ["1.1.2"], True),
        ("IMAGE", "S", "1.2", ["1.2.1", "1.2.2"], [], False),
        ("SERIES", "", "T.9", [], [], True),
    ]
    assert plan.requested == 4 and plan.already_here == 3
