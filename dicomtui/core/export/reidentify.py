"""Re-identification of the user's own de-identified data (issue 17): the mapping kept in the database folder
(:mod:`.deid_mapping`, PS3.15 E.1's "key") turns a pseudonym back into the original PatientID and PatientName, each
new UID back into the original one (references inside sequences included) and, for files de-identified with
Retain Longitudinal Temporal Information with Modified Dates, moves the shifted dates back by the patient's offset.

Typical use: a study sent out de-identified comes back with objects made from it (a SEG, an SR); re-identified,
their references point at the original instances again. UIDs the mapping does not know (the new objects' own)
are kept. It is the export's transform hook (``ExportOptions.transform``). A file whose PatientID is no pseudonym
of the mapping is refused (``refused``, with the reason): the mapping cannot say whose it is. What the Basic
Profile removed (names of staff, descriptions, dates without the option) cannot come back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydicom import Dataset
from pydicom.uid import UID_dictionary

from .deid_mapping import DeidMapping
from .deidentify import basic_profile_action, shifted_date

__all__ = ["Reidentifier"]

_DEID_RECORD = ("DeidentificationMethod", "DeidentificationMethodCodeSequence",
                "LongitudinalTemporalInformationModified")


@dataclass
class Reidentifier:
    """The transform: ``reidentifier(dataset)`` restores ``dataset`` in place from ``mapping`` and returns it, or
    returns None for a file whose PatientID the mapping does not know (its SOPInstanceUID and the reason then in
    ``refused``). ``kept_uids`` counts the UIDs the mapping did not know (kept as they are)."""

    mapping: DeidMapping
    refused: list[tuple[str, str]] = field(default_factory=list)
    kept_uids: int = 0

    def __call__(self, ds: Dataset) -> Dataset | None:
        pseudonym = str(ds.get("PatientID", "") or "")
        found = self.mapping.original_patient(pseudonym)
        if found is None:
            self.refused.append((str(ds.get("SOPInstanceUID", "")),
                                 f"the de-identification mapping has no patient with the pseudonym {pseudonym!r}"))
            return None
        original_id, entry = found
        modified = str(ds.get("LongitudinalTemporalInformationModified", "")).upper() == "MODIFIED"
        self._restore(ds, -entry.offset_days if modified else 0)
        ds.PatientID = original_id
        ds.PatientName = entry.name or original_id
        ds.PatientIdentityRemoved = "NO"
        for keyword in _DEID_RECORD:
            if keyword in ds:
                delattr(ds, keyword)
        meta = getattr(ds, "file_meta", None)
        if meta is not None and "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        return ds

    def _restore(self, ds: Dataset, days: int) -> None:
        for elem in ds:
            if elem.VR == "SQ":
                for item in elem.value:
                    self._restore(item, days)
            elif elem.VR == "UI" and elem.value:
                elem.value = self._originals(elem.value)
            elif days and elem.VR in ("DA", "DT") and elem.value and basic_profile_action(int(elem.tag)):
                # the de-identifier shifted exactly these (dates the Basic Profile lists, kept by the option)
                values = [shifted_date(v, days) for v in ([elem.value] if elem.VM == 1 else elem.value)]
                elem.value = values[0] if elem.VM == 1 else values

    def _originals(self, value: Any) -> Any:
        values = [value] if isinstance(value, str) else list(value)
        out = []
        for v in values:
            if str(v) in UID_dictionary:  # a registered UID (SOP class, coding scheme): never replaced
                out.append(v)
                continue
            original = self.mapping.original_uid(str(v))
            if original is None:
                self.kept_uids += 1
            out.append(original or v)
        return out[0] if isinstance(value, str) else out

