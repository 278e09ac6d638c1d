"""Query a remote node: a protocol-neutral model (level, filters, return keys; answers as plain dicts keyed by
PS3.3 keyword) and its DIMSE side, Study Root C-FIND (PS3.4 C.4.1). QIDO-RS (PS3.18 10.6) reuses the model:
:func:`matching_keys` gives the same keyword → value pairs its query parameters are made of.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..errors import NetworkError
from .associate import application_entity, associate
from .nodes import LocalNode, RemoteNode
from .status import PENDING_CODES, Service, qr_meaning, stopped_answering
from .wire import STUDY_ROOT_FIND as FIND


class QueryLevel(StrEnum):
    """What a query lists (equal to the plain strings "study", "series", "image")."""

    STUDY = "study"
    SERIES = "series"
    IMAGE = "image"

    @property
    def qr_level(self) -> str:
        """The Query/Retrieve Level value (0008,0052) of this level (PS3.4 C.6.1)."""
        return self.value.upper()


LEVELS = tuple(level.value for level in QueryLevel)
# What each level's answers hold, by PS3.3 keyword (the columns of `dicomtui query`)
RETURN_KEYS = {
    "study": ["PatientName", "PatientID", "PatientBirthDate", "StudyInstanceUID", "StudyDate", "StudyTime",
              "StudyDescription", "AccessionNumber", "ModalitiesInStudy", "NumberOfStudyRelatedSeries",
              "NumberOfStudyRelatedInstances"],
    "series": ["PatientName", "PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SeriesNumber", "Modality",
               "SeriesDescription", "NumberOfSeriesRelatedInstances"],
    "image": ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID", "InstanceNumber"],
}


@dataclass
class QueryFilters:
    """What the user typed; :func:`matching_keys` turns it into matching keys (PS3.4 C.2.2.2)."""

    name: str = ""  # a substring of PatientName, or a pattern with * and ?
    patient_id: str = ""
    date: str = ""  # "YYYYMMDD", "FROM-TO", "FROM-" or "-TO" (dashes in dates allowed: 2024-01-31)
    modality: str = ""  # "CT" or "CT,MR"
    accession: str = ""
    description: str = ""  # a substring of the study (study level) or series description
    study_uid: str = ""
    series_uid: str = ""


def date_range(text: str) -> str:
    """'2024-01-01..2024-02-01', '20240101-20240201', '2024-01-01' → a DICOM date (range)."""
    text = text.strip()
    if ".." in text:
        low, high = text.split("..", 1)
    elif len(text.replace("-", "")) == 16 or (text.count("-") == 1 and len(text) in (9, 17)):
        low, high = text.split("-", 1) if "-" in text else (text, text)
    elif text.count("-") == 5:  # 2024-01-01-2024-02-01
        low, high = text[:10], text[11:]
    else:
        return text.replace("-", "")
    return f"{low.replace('-', '')}-{high.replace('-', '')}"


def check_level(level: str) -> QueryLevel:
    """``level`` as a QueryLevel; NetworkError when it is none."""
    if level not in LEVELS:
        raise NetworkError(f"level must be one of {', '.join(LEVELS)}")
    return QueryLevel(level)


def matching_keys(level: str, filters: QueryFilters) -> dict[str, str]:
    """The filters as matching keys: PS3.3 keyword → value with DICOM wildcards (* ?) and date ranges."""
    keys: dict[str, str] = {}
    if filters.name:
        keys["PatientName"] = filters.name if ("*" in filters.name or "?" in filters.name) else f"*{filters.name}*"
    if filters.patient_id:
        keys["PatientID"] = filters.patient_id
    if filters.date:
        keys["StudyDate"] = date_range(filters.date)
    if filters.modality:
        modalities = "\\".join(m.strip().upper() for m in filters.modality.replace("\\", ",").split(",") if m.strip())
        if level == "study":
            keys["ModalitiesInStudy"] = modalities
        elif level == "series":
            keys["Modality"] = modalities
    if filters.accession:
        keys["AccessionNumber"] = filters.accession
    if filters.description:
        keys["StudyDescription" if level == "study" else "SeriesDescription"] = f"*{filters.description}*"
    if filters.study_uid:
        keys["StudyInstanceUID"] = filters.study_uid
    if filters.series_uid:
        keys["SeriesInstanceUID"] = filters.series_uid
    return keys


def build_query(level: str, filters: QueryFilters, charset: str):
    """The C-FIND identifier (a pydicom Dataset): the level's return keys empty, the matching keys set."""
    from pydicom.dataset import Dataset

    qr_level = check_level(level)
    ds = Dataset()
    ds.SpecificCharacterSet = charset
    ds.QueryRetrieveLevel = qr_level.qr_level
    for keyword in RETURN_KEYS[level]:
        setattr(ds, keyword, "")
    for keyword, value in matching_keys(level, filters).items():
        setattr(ds, keyword, value)
    return ds


def answer_text(value) -> str:
    """An attribute value of an answer as text (multiple values joined by backslash, as DICOM writes them)."""
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


def query(node: RemoteNode, level: str = "study", filters: QueryFilters | None = None,
          local: LocalNode | None = None) -> list[dict[str, str]]:
    """Study Root C-FIND; each match as {keyword: text} (keys among ``RETURN_KEYS[level]``), decoded in the
    character set the peer answered in. Raises NetworkError (association, or a failure status in words)."""
    local = local or LocalNode()
    identifier = build_query(level, filters or QueryFilters(), node.charset)
    ae = application_entity(local, node)
    ae.add_requested_context(FIND)
    assoc = associate(ae, node)
    results = []
    try:
        for status, match in assoc.send_c_find(identifier, FIND):
            if status is None or "Status" not in status:
                raise NetworkError(stopped_answering(node.address, Service.FIND))
            code = int(status.Status)
            if code in PENDING_CODES and match is not None:
                results.append({kw: answer_text(match.get(kw)) for kw in RETURN_KEYS[level] if kw in match})
            elif code != 0:
                raise NetworkError(f"{node.address} answered the C-FIND with {qr_meaning(code, Service.FIND)}")
    finally:
        if assoc.is_established:
            assoc.release()
    return results
