"""The multi-frame option of a new series: its single-frame CT or MR images converted into one Legacy Converted
Enhanced CT / MR Image (PS3.3 A.70, A.71) by highdicom's ``highdicom.legacy`` (the per-frame Plane Position,
Plane Orientation, Pixel Measures and Pixel Value Transformation functional groups written from the slices' own
attributes; PS3.3 C.7.6.16).

Not the full Enhanced CT/MR Image IODs (A.38, A.4.x): those need acquisition functional groups (CT Acquisition
Details, MR Timing…) a derived volume does not have. dciodvfy's check of the result is part of the interop tests.
"""

from __future__ import annotations

from typing import Any

from ..errors import VolumeWriteError

LEGACY_ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.2"
LEGACY_ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.4"
ENHANCED_NAMES = {LEGACY_ENHANCED_CT: "Legacy Converted Enhanced CT Image Storage",
                  LEGACY_ENHANCED_MR: "Legacy Converted Enhanced MR Image Storage"}


def legacy_enhanced(datasets: list[Any], sop_instance_uid: str, reference: Any | None) -> Any:
    """One multi-frame data set from the single-frame ``datasets`` of one CT or MR series (frame k = slice k),
    with ``sop_instance_uid``; ``reference`` (a volume_series.Reference, or None) is named in the Source Image
    Evidence Sequence (PS3.3 C.8.15.2 / C.8.13.1: required of a DERIVED image). Raises VolumeWriteError for other
    classes (Secondary Capture has no multi-frame legacy conversion)."""
    from highdicom.legacy import LegacyConvertedEnhancedCTImage, LegacyConvertedEnhancedMRImage
    from pydicom.dataset import Dataset

    modality = str(datasets[0].Modality)
    converters = {"CT": LegacyConvertedEnhancedCTImage, "MR": LegacyConvertedEnhancedMRImage}
    if modality not in converters:
        raise VolumeWriteError(f"a multi-frame (enhanced) series is written for CT or MR only, not {modality}: "
                               "give --like a CT or MR series, or --modality CT or MR.")
    first = datasets[0]
    enhanced = converters[modality](legacy_datasets=datasets, series_instance_uid=str(first.SeriesInstanceUID),
                                    series_number=int(first.SeriesNumber), sop_instance_uid=sop_instance_uid,
                                    instance_number=1)
    if reference is not None:
        series = Dataset()
        series.SeriesInstanceUID = reference.series_uid
        sops = []
        for sop_class, sop_uid in reference.instances:
            item = Dataset()
            item.ReferencedSOPClassUID = sop_class
            item.ReferencedSOPInstanceUID = sop_uid
            sops.append(item)
        series.ReferencedSOPSequence = sops
        evidence = Dataset()
        evidence.StudyInstanceUID = first.StudyInstanceUID
        evidence.ReferencedSeriesSequence = [series]
        enhanced.SourceImageEvidenceSequence = [evidence]
    return enhanced
