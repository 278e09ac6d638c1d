"""The renderers' output decoded: sixel (our encoder, decoded by a small decoder here), kitty direct placement,
half-block cells in each colour system; and the renderer and colour choice from what a terminal answered."""

from __future__ import annotations

import base64
import re
import zlib

import numpy as np
import pytest

from dicomtui.tui.widgets import halfblocks, kitty, sixel, terminal
from dicomtui.tui.widgets.halfblocks import PALETTE_GREYS, palette_256, strips


def decode_sixel(data: str) -> np.ndarray:
    """RGB uint8 (H, W, 3) drawn by a sixel string: registers defined by ``#n;2;r;g;b`` (percent), selected by
    ``#n``; unset pixels stay (-1). A colour used before it was selected fails the test (xterm would paint it
    with the register current then: VT340 green)."""
    assert data.startswith("\x1bP") and data.endswith("\x1b\\")
    body = data[data.index("q") + 1:-2]
    m = re.match(r'"(\d+);(\d+);(\d+);(\d+)', body)
    assert m, "no raster attributes"
    width, height = int(m.group(3)), int(m.group(4))
    body = body[m.end():]
    out = np.full((height + 6, width, 3), -1, dtype=np.int32)
    registers: dict[int, tuple[int, int, int]] = {}
    current: int | None = None
    x = y = 0
    pos = 0
    while pos < len(body):
        ch = body[pos]
        if ch == "#":
            m = re.match(r"#(\d+)(;2;(\d+);(\d+);(\d+))?", body[pos:])
            n = int(m.group(1))
            if m.group(2):
                registers[n] = tuple(round(int(m.group(k)) * 255 / 100) for k in (3, 4, 5))
            else:
                assert n in registers, f"register {n} selected before it was defined"
                current = n
            pos += m.end()
            continue
        if ch == "$":
            x = 0
        elif ch == "-":
            x, y = 0, y + 6
        elif ch == "!" or "?" <= ch <= "~":
            count = 1
            if ch == "!":
                m = re.match(r"!(\d+)(.)", body[pos:])
                count, ch = int(m.group(1)), m.group(2)
                pos += m.end() - 1
            bits = ord(ch) - 0x3F
            if bits:
                assert current is not None, "pixels drawn before any register was selected"
                for bit in range(6):
                    if bits >> bit & 1:
                        out[y + bit, x:x + count] = registers[current]
            x += count
        else:
            pytest.fail(f"unexpected {ch!r} in the sixel body at {pos}")
        pos += 1
    return out[:height]


def shown_grey(grey: np.ndarray) -> np.ndarray:
    """What a sixel terminal shows for grey: percent RGB has 101 steps."""
    return np.round(((grey.astype(np.int32) * 100 + 127) // 255) * 255 / 100).astype(np.int32)


def test_sixel_grey_is_the_image() -> None:
    """Every grey of a 256-level ramp (and a uniform area, which once came out bright green) decodes to itself,
    within the 101 steps of percent RGB; the height need not be a multiple of 6."""
    grey = np.zeros((47, 300), dtype=np.uint8)
    grey[:30] = np.arange(300) % 256
    grey[30:] = 117
    decoded = decode_sixel(sixel.encode(grey))
    assert (decoded >= 0).all(), "pixels left unset"
    assert (decoded[..., 0] == decoded[..., 1]).all() and (decoded[..., 1] == decoded[..., 2]).all()
    assert np.array_equal(decoded[..., 0], shown_grey(grey))
    assert np.abs(decoded[..., 0] - grey).max() <= 1.3


def test_sixel_colour_is_the_image() -> None:
    """A colour image of ≤ 256 colours decodes exactly (in percent steps); one of more colours is quantised to
    256 registers, close to the input."""
    rng = np.random.default_rng(1)
    colours = rng.integers(0, 256, (40, 3), dtype=np.uint8)
    image = colours[rng.integers(0, 40, (24, 50))]
    decoded = decode_sixel(sixel.encode(image))
    assert np.array_equal(decoded, shown_grey(image))
    smooth = np.stack([*np.meshgrid(np.arange(64) * 4, np.arange(60) * 4, indexing="xy"), np.full((60, 64), 128)],
                      axis=2).astype(np.uint8)
    decoded = decode_sixel(sixel.encode(smooth))
    assert np.abs(decoded - smooth.astype(np.int32)).mean() < 6


def test_sixel_keeps_to_the_registers_the_terminal_has() -> None:
    """With the 16 registers of a real VT340 (XTSMGRAPHICS answer), a grey ramp uses 16 evenly spaced greys;
    a colour image is quantised to 16 colours."""
    grey = np.repeat(np.arange(256, dtype=np.uint8)[None, :], 6, axis=0)
    data = sixel.encode(grey, registers=16)
    assert len(re.findall(r"#\d+;2;", data)) == 16
    decoded = decode_sixel(data)[..., 0]
    assert len(np.unique(decoded)) == 16 and np.abs(decoded - grey).max() <= 255 / 15 / 2 + 2
    rng = np.random.default_rng(3)
    colour = rng.integers(0, 256, (12, 40, 3), dtype=np.uint8)
    assert len(re.findall(r"#\d+;2;", sixel.encode(colour, registers=16))) <= 16


def test_sixel_runs_are_encoded() -> None:
    """A uniform band is one register and one run per band, not 300 characters."""
    data = sixel.encode(np.full((12, 300), 200, dtype=np.uint8))
    assert "!300~" in data and len(data) < 120, data
    assert sixel.run_length(np.frombuffer(b"#111$????x", dtype=np.uint8)) == b"#111$!4?x"


def test_kitty_transmit_is_the_image() -> None:
    """The direct placement sends RGB, zlib-compressed, in chunks of ≤ 4096 base64 characters, sized to the
    cells, and leaves the cursor (C=1); the pixels come back."""
    grey = np.random.default_rng(2).integers(0, 256, (120, 200), dtype=np.uint8)  # does not compress
    data = kitty.transmit(grey, 42, (20, 6))
    chunks = re.findall(r"\x1b_G([^;]*);([^\x1b]*)\x1b\\", data)
    assert len(chunks) > 1 and all(len(payload) <= 4096 for _, payload in chunks)
    keys = dict(kv.split("=") for kv in chunks[0][0].split(","))
    assert keys | {"a": "T", "f": "24", "o": "z", "s": "200", "v": "120", "i": "42", "c": "20", "r": "6",
                   "C": "1"} == keys
    assert [k for k, _ in chunks[1:]] == ["m=1"] * (len(chunks) - 2) + ["m=0"]
    raw = zlib.decompress(base64.standard_b64decode("".join(p for _, p in chunks)))
    rgb = np.frombuffer(raw, dtype=np.uint8).reshape(120, 200, 3)
    assert np.array_equal(rgb[..., 1], grey)
    assert kitty.place(42, (20, 6)) == "\x1b_Ga=p,i=42,p=1,c=20,r=6,C=1,q=2\x1b\\"


def test_256_colours_give_30_greys_dithered() -> None:
    """In 256 colours, greys use the 24-step ramp and the cube's six greys (30 levels), never the 16 system
    colours; a mid grey between two palette greys is dithered between them, keeping its mean."""
    assert len(PALETTE_GREYS) == 30
    ramp = np.repeat(np.arange(256, dtype=np.uint8)[None, :], 8, axis=0)
    indices = palette_256(ramp)
    assert set(np.unique(indices).tolist()) == {i for _, i in PALETTE_GREYS}
    value = dict((i, v) for v, i in PALETTE_GREYS)
    flat = palette_256(np.full((16, 16), 100, dtype=np.uint8))
    shown = np.vectorize(value.get)(flat)
    assert set(np.unique(shown).tolist()) == {98, 108} and abs(shown.mean() - 100) < 1


def test_half_blocks_256_styles_are_palette_colours() -> None:
    """The strips in 256 colours carry palette indices (Rich writes 38;5;n), not RGB that a 16-colour console
    would downgrade to 4 greys."""
    grey = np.repeat(np.arange(0, 256, 4, dtype=np.uint8)[None, :], 2, axis=0)
    styles = {seg.style for seg in strips(grey, "256")[0]}
    numbers = {s.color.number for s in styles} | {s.bgcolor.number for s in styles}
    assert len(numbers) >= 24 and numbers <= {i for _, i in PALETTE_GREYS}


def test_half_blocks_colour_images() -> None:
    """RGB arrays draw in colour in both systems; their grey pixels stay on the grey levels."""
    image = np.zeros((2, 3, 3), dtype=np.uint8)
    image[0] = [[255, 0, 0], [0, 0, 255], [128, 128, 128]]
    image[1] = [[0, 255, 0], [255, 255, 0], [128, 128, 128]]
    (strip,) = strips(image, "truecolor")
    cells = [(seg.style.color.triplet, seg.style.bgcolor.triplet) for seg in strip]
    assert cells[0] == ((252, 4, 4), (4, 252, 4)) and cells[1] == ((4, 4, 252), (252, 252, 4))
    assert cells[2] == ((130, 130, 130), (130, 130, 130))
    (strip,) = strips(image, "256")
    assert [seg.style.color.number for seg in strip][:2] == [196, 21]


ANSWERS = {  # recorded here (Xvfb; tmux with TERM=xterm), COLORTERM unset
    "xterm 379 -ti vt340": "\x1bP>|XTerm(379)\x1b\\\x1b[?1;0;1024S\x1b[?2;0;720;442S\x1bP1$r0;38:2::1:2:3m\x1b\\"
                           "\x1b[?63;1;2;4;6;9;15;16;22;28c",
    "kitty 0.26.5": "\x1bP>|kitty(0.26.5)\x1b\\\x1b_Gi=31;OK\x1b\\\x1bP1$r38:2:1:2:3m\x1b\\\x1bP0+r524742\x1b\\"
                    "\x1bP0+r5463\x1b\\\x1b[6;20;9t\x1b[?62;c",
    "tmux 3.3a": "\x1bP>|tmux 3.3a\x1b\\\x1b[?1;2c",
    # not recorded: a kitty with unicode placeholders (0.28+), and a terminal whose XTGETTCAP confirms RGB
    "kitty 0.35 (made up)": "\x1bP>|kitty(0.35.2)\x1b\\\x1b_Gi=31;OK\x1b\\\x1bP1+r524742=74727565\x1b\\\x1b[?62;c",
}


@pytest.mark.parametrize(("name", "renderer", "colors"), [
    ("xterm 379 -ti vt340", "sixel", "truecolor"), ("kitty 0.26.5", "kitty", "truecolor"),
    ("tmux 3.3a", "halfblock", "256"), ("kitty 0.35 (made up)", "kitty-placeholders", "truecolor")])
def test_choice_from_answers(name: str, renderer: str, colors: str) -> None:
    """What xterm, kitty and tmux answered: the renderer and colour system, each with its reason."""
    term = terminal.parse(ANSWERS[name], terminal.Terminal(asked=True, term="xterm"))
    choice = terminal.choose(term)
    assert (choice.renderer, choice.colors) == (renderer, colors), choice
    assert choice.renderer_why and choice.colors_why
    if name.startswith("xterm"):
        assert term.sixel_registers == 1024 and term.sixel_geometry == (720, 442) and term.version == "XTerm(379)"
    if name == "kitty 0.26.5":
        assert term.kitty_version() == (0, 26, 5) and term.cell == (9, 20) and not term.sixel
        assert "0.28" in choice.renderer_why


def test_colour_choice_never_16() -> None:
    """COLORTERM=truecolor gives 24-bit colour; nothing known gives 256 (with how to get more), never 16."""
    assert terminal.choose(terminal.Terminal(colorterm="truecolor")).colors == "truecolor"
    choice = terminal.choose(terminal.Terminal(term="xterm"))
    assert choice.colors == "256" and "--colors truecolor" in choice.colors_why
    assert terminal.choose(terminal.Terminal(), colors="truecolor").colors == "truecolor"


def test_half_blocks_default_to_truecolor_when_not_asked() -> None:
    """Headless (tests, screenshots: nobody asked the terminal) the half-blocks keep 64 levels of 24-bit grey."""
    assert terminal.current()[1] is None and terminal.colour_system() == "truecolor"
    assert halfblocks.LEVELS == 64


def test_doctor_terminal_without_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    """`dicomtui doctor terminal` with no terminal to ask says so and what it would use; `doctor NODE` is still
    the node check (an unknown node: exit 2 with its sentence)."""
    from dicomtui.cli import main

    assert main(["doctor", "terminal"]) == 0
    out = capsys.readouterr().out
    assert "asked the terminal: no (not a terminal)" in out
    assert "renderer: halfblock — the terminal was not asked" in out and "colours: 256" in out
    assert main(["doctor", "no-such-node"]) == 2
    assert "no-such-node" in capsys.readouterr().err


def test_test_pattern_is_a_ramp_over_colour_bars() -> None:
    from dicomtui.cli.terminal_cmds import test_pattern

    image = test_pattern(60, 30)
    assert image.shape == (30, 60, 3) and image[0, 0].tolist() == [0, 0, 0] and image[0, -1].tolist() == [255] * 3
    assert image[-1, 0].tolist() == [255, 0, 0] and image[-1, -1].tolist() == [255, 0, 255]


def test_image_class_per_renderer_name() -> None:
    """Each renderer name gives its widget; "auto" before the terminal was asked gives half-blocks."""
    from dicomtui.tui.widgets.graphics import image_class, renderer_name
    from dicomtui.tui.widgets.halfblocks import HalfBlocks
    from dicomtui.tui.widgets.kitty import KittyImage
    from dicomtui.tui.widgets.sixel import SixelImage

    assert image_class("auto") is HalfBlocks and image_class("halfblock") is HalfBlocks
    assert image_class("sixel") is SixelImage and image_class("kitty") is KittyImage
    for name in ("auto", "halfblock", "sixel", "kitty"):
        assert renderer_name(image_class(name)) in ("halfblock", "sixel", "kitty")
    assert renderer_name(image_class("unicode")) in ("unicode", "halfblock")  # textual-image's, if it imports


@pytest.mark.parametrize("renderer", ["sixel", "kitty"])
async def test_viewer_gives_the_graphics_widget_the_slice(renderer: str, tmp_path) -> None:
    """Headless, the viewer with the sixel / kitty renderer hands the widget the windowed slice at cells × the
    cell size in pixels (10×20 when nobody asked; sixel: whole bands of 6 rows), and the widget's escape string
    draws exactly those pixels."""
    from dicomtui.tui.app import DicomTuiApp
    from tests.tui.conftest import make_db, settle

    app = DicomTuiApp(make_db(tmp_path), renderer=renderer, settings_path=tmp_path / "config.toml")
    async with app.run_test(size=(120, 34)) as pilot:
        await pilot.press("3", "enter")  # the series pane, load
        await settle(app, pilot)
        image = app.screen.query_one("#slice-image")
        assert image.renderer == renderer and image.pixels is not None
        cells = (image.size.width, image.size.height)
        height, width = image.pixels.shape
        assert width == cells[0] * 10 and height == (cells[1] * 20 // 6 * 6 if renderer == "sixel" else cells[1] * 20)
        image.show(image.pixels)  # a new image: sent again (the first draw already sent and placed it)
        data = image.escape(cells)
        if renderer == "sixel":
            assert np.array_equal(decode_sixel(data)[..., 0], (((image.pixels.astype(np.int32) * 100 + 127) // 255)
                                                                * 255 / 100).round())
        else:
            assert f"s={width},v={height}" in data and f"c={cells[0]},r={cells[1]}" in data
            assert image.escape(cells) == kitty.place(image.image_id, cells)  # sent once, placed again
