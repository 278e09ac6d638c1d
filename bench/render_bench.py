"""Encoding one slice for the terminal, side by side: our sixel encoder against textual-image's (the peer, 0.12
on Python 3.11), and the half-block strips in 24-bit and 256 colours. Runs alternate, best of N, so the ratio
survives a loaded machine.

The slice: the CT head phantom (core.synth) windowed W 400 L 40 and resized as the slice view does, to the pixels
of a 92×46-cell image with 10×20-pixel cells (920×920; sixel heights are whole bands of 6). Checks: our sixel
output decodes to the input (tests/tui/test_renderers.py has the decoder; here only its size and palette).

Run:  .venv/bin/python bench/render_bench.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import check, target_row  # noqa: E402
from dicomtui.core.synth import SeriesSpec, head_phantom  # noqa: E402
from dicomtui.tui.widgets import halfblocks, sixel  # noqa: E402

RUNS = 7
CELLS = (92, 46)
CELL = (10, 20)


def slice_grey(size: tuple[int, int]) -> np.ndarray:
    spec = SeriesSpec(rows=192, cols=160, slices=48)
    hu = head_phantom(21, spec).astype(np.float64) - 1024
    grey = np.clip((hu - (40 - 200)) / 400 * 255, 0, 255).astype(np.uint8)
    return np.asarray(Image.fromarray(grey).resize(size, Image.Resampling.BILINEAR))


def best(fn, runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    width, height = CELLS[0] * CELL[0], CELLS[1] * CELL[1] // 6 * 6
    grey = slice_grey((width, height))
    data = sixel.encode(grey)
    check(data.count("#") > 10 and data.endswith("\x1b\\"), "our sixel output is not a sixel image")
    try:
        from textual_image._sixel import image_to_sixels
    except ImportError:
        image_to_sixels = None
    ours, peer = [], []
    for _ in range(RUNS):  # alternating, so both see the same load
        ours.append(best(lambda: sixel.encode(grey), 1))
        if image_to_sixels is not None:
            peer.append(best(lambda: image_to_sixels(Image.fromarray(grey).convert("RGB")), 1))
    print(f"sixel {width}×{height}: ours {min(ours) * 1000:.1f} ms ({len(data) / 1e3:.0f} kB)", end="")
    if peer:
        size = len(image_to_sixels(Image.fromarray(grey).convert("RGB")))
        print(f", textual-image {min(peer) * 1000:.1f} ms ({size / 1e3:.0f} kB): "
              f"{min(peer) / min(ours):.2f}× ours")
    else:
        print(" (textual-image not installed)")
    target_row("sixel encode of a 920×918 slice", f"{min(ours) * 1000:.0f} ms", "≤ 50 ms", min(ours) <= 0.050)

    cells = np.asarray(Image.fromarray(grey).resize((CELLS[0], CELLS[1] * 2), Image.Resampling.BILINEAR))
    for system in ("truecolor", "256"):
        halfblocks.strips(cells, system)  # warm the style cache, as after the first frames
        seconds = best(lambda system=system: halfblocks.strips(cells, system))
        print(f"half-blocks {CELLS[0]}×{CELLS[1]} cells, {system}: {seconds * 1000:.1f} ms")
        target_row(f"half-block strips, {system}", f"{seconds * 1000:.1f} ms", "≤ 10 ms", seconds <= 0.010)
    return 0


if __name__ == "__main__":
    sys.exit(main())
