"""Leave out the files of a stack that cannot be decoded, and keep the others: one bad file (a 12-bit JPEG no
installed decoder reads, a damaged fragment) must not take its whole series down. The stack left is checked
again (``geometry.check_stack``), so the gap a missing slice leaves is said, like any other gap."""

from __future__ import annotations

import numpy as np

from ..errors import PixelError
from .geometry import Row, StackGeometry, check_stack


def leave_out(raw: np.ndarray, instances: list[Row], unreadable: list[tuple[int, str]],
              warnings: list[str]) -> tuple[np.ndarray, list[Row], StackGeometry | None, list[str]]:
    """The slices of ``raw`` [k, ...] (rows ``instances``, same order) without those ``unreadable`` names as
    (index, sentence naming the file): the array, rows and geometry left, and ``warnings`` plus one sentence per
    file left out and what the new check finds. Raises ``PixelError`` (the first file's sentence) when no slice
    could be read."""
    bad = {k for k, _ in unreadable}
    if len(bad) == len(instances):
        first = min(unreadable)[1]
        others = f" (and the {len(bad) - 1} other files)" if len(bad) > 1 else ""
        raise PixelError(first + others)
    index_of = {id(row): k for k, row in enumerate(instances) if k not in bad}
    check = check_stack([instances[k] for k in sorted(index_of.values())])
    kept = raw[[index_of[id(row)] for row in check.instances]]
    said = [f"left out, unreadable: {text}" for _, text in sorted(unreadable)]  # text names the file and why
    return kept, check.instances, check.geometry, list(warnings) + said + [w for w in check.warnings
                                                                           if w not in warnings]
