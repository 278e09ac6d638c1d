"""The half-block image widget's strips."""

from __future__ import annotations

import numpy as np

from dicomtui.tui.widgets.halfblocks import strips


def test_half_blocks_are_the_image() -> None:
    """Each cell shows two pixels: the upper as foreground, the lower as background, in 64 grey levels; runs of
    equal cells are one segment."""
    grey = np.array([[0, 0, 255, 255], [255, 255, 0, 0]], dtype=np.uint8)
    (strip,) = strips(grey)
    segments = list(strip)
    assert [s.text for s in segments] == ["▀▀", "▀▀"]
    assert segments[0].style.color.triplet == (2, 2, 2) and segments[0].style.bgcolor.triplet == (254, 254, 254)
    assert segments[1].style.color.triplet == (254, 254, 254) and segments[1].style.bgcolor.triplet == (2, 2, 2)
