"""What examine offers: a way to read some files of a series as one volume (or several), with doubts attached."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Loadable:
    """One interpretation of (part of) a series: its instance rows (sorted as they will be stacked), the plugin
    that proposed it, how confident it is (0-1), the warnings a user should read first, and whether it is
    selected by default."""

    name: str
    instances: list[dict[str, Any]]
    plugin: str
    confidence: float
    warnings: list[str] = field(default_factory=list)
    selected: bool = False
    series_uid: str = ""
    details: dict[str, Any] = field(default_factory=dict)  # what the plugin needs at load time

    @property
    def files(self) -> frozenset[str]:
        return frozenset(i["SOPInstanceUID"] for i in self.instances)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "plugin": self.plugin, "confidence": round(self.confidence, 3),
                "selected": self.selected, "warnings": list(self.warnings), "instances": len(self.instances),
                "series_uid": self.series_uid}
