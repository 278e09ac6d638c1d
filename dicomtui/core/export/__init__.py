"""Export: database items to a folder, a ZIP or a DICOMDIR file-set, with a transform hook on the way
(:mod:`.folder`); the names each file gets (:mod:`.layout`); the DICOMDIR writer (:mod:`.dicomdir`); a Volume
written as a new DICOM series (:mod:`.volume_series`, its values encoded by :mod:`.volume_encoding`); tag edits of
stored items (:mod:`.edit`: plan and apply; :mod:`.vr` validation, :mod:`.tagpath`, :mod:`.rewrite`, :mod:`.form`)."""

from __future__ import annotations

from .folder import ExportOptions, ExportProblem, ExportReport, Transform, export_files, export_items
from .layout import ExportFile, Layout, plan_export

__all__ = ["ExportFile", "ExportOptions", "ExportProblem", "ExportReport", "Layout", "Transform", "export_files",
           "export_items", "plan_export"]
