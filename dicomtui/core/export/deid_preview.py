"""What de-identification would change in one file, without changing anything: the rows of a diff for the CLI's
``deidentify --preview`` and the TUI's preview (issue 17).

The file is read, de-identified by a :class:`.deidentify.Deidentifier` whose mapping is a copy (no pseudonym or
UID is added to the user's mapping by a preview), and compared with its original element by element, into every
sequence item.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Any

from ..dicomfile import read_dataset
from .deid_mapping import DeidMapping
from .deidentify import Deidentifier, DeidOptions

__all__ = ["DeidChange", "preview_file"]


@dataclass(frozen=True)
class DeidChange:
    """One attribute's change: ``path`` (``Keyword`` or ``Sequence[i].Keyword``; ``(gggg,eeee)`` when no
    keyword), ``before`` and ``after`` as shown (``after`` None: removed; ``before`` None: added)."""

    path: str
    before: str | None
    after: str | None

    def line(self) -> str:
        """``path: before → after`` (``removed``, ``added``) as the CLI prints it."""
        if self.after is None:
            return f"- {self.path}: {self.before}"
        if self.before is None:
            return f"+ {self.path}: {self.after}"
        return f"~ {self.path}: {self.before} -> {self.after}"


def preview_file(path: str | os.PathLike[str], options: DeidOptions, mapping: DeidMapping | None = None
                 ) -> tuple[list[DeidChange], bool]:
    """The changes de-identifying the file at ``path`` would make (header only; Pixel Data is not read), and
    whether it would be refused for burned-in annotation (then the changes are those ``accept_burned_in``
    would make). ``mapping`` is copied, never changed. Raises what reading the file raises."""
    scratch = (mapping or DeidMapping()).scratch()
    original = read_dataset(path).dataset
    accepting = DeidOptions(**{**options.__dict__, "accept_burned_in": True})
    refused = Deidentifier(options, scratch)(copy.deepcopy(original)) is None
    after = Deidentifier(accepting, scratch)(copy.deepcopy(original))
    return _diff(original, after, ""), refused


def _shown(elem: Any) -> str:
    if elem.VR == "SQ":
        return f"{len(elem.value)} item(s)"
    text = str(elem.value) if elem.value not in (None, "") else "(empty)"
    return text if len(text) <= 64 else text[:61] + "..."


def _diff(before: Any, after: Any, prefix: str) -> list[DeidChange]:
    changes = []
    for tag in sorted(set(before.keys()) | set(after.keys())):
        old, new = before.get(tag), after.get(tag)
        name = prefix + ((old or new).keyword or f"({tag.group:04X},{tag.element:04X})")
        if new is None:
            changes.append(DeidChange(name, _shown(old), None))
        elif old is None:
            changes.append(DeidChange(name, None, _shown(new)))
        elif old.VR == "SQ" and new.VR == "SQ" and len(old.value) == len(new.value):
            for i, (a, b) in enumerate(zip(old.value, new.value, strict=True)):
                changes += _diff(a, b, f"{name}[{i}].")
        elif _shown(old) != _shown(new) or old.value != new.value:
            changes.append(DeidChange(name, _shown(old), _shown(new)))
    return changes
