"""When the viewer lets Python's cyclic garbage collector run: not inside a slice step.

Each composed frame leaves cyclic garbage (Textual 8.2's ``Strip.divide`` caches ``[self]`` in the strip it
divides), so the automatic full collection, when it came, landed inside a keystroke. The slice view freezes what
is alive once an item is shown and collects after a frame, when a full collection is near.
"""

from __future__ import annotations

import gc


def freeze_live() -> None:
    """Collect, then move what is alive out of the collector's way (until ``gc.unfreeze()``)."""
    gc.collect()
    gc.freeze()


def collect_when_due() -> None:
    """A full garbage collection now, after the frame went out, when the automatic one is near (it runs when the
    count of generation-1 collections passes its threshold, 10). Each composed frame leaves ~2,800 objects of
    cyclic garbage (Textual's ``Strip.divide`` caches ``[self]`` in the strip); collected by the automatic full
    collection, that took 16-40 ms inside a slice step every ~20 steps (bench/tui_bench.py, gc callbacks). Here
    it runs while the user looks at the new slice."""
    if gc.get_count()[2] >= GC_DUE:
        gc.collect()


GC_DUE = 2  # of the 10 generation-1 collections after which Python runs a full one (a step makes about half of one)
