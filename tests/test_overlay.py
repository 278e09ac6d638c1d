"""Overlays composed on a slice (core.overlay): outlines exactly on the mask's boundary, the fill colour, a label
volume on another grid resampled through LPS, the dose wash above its threshold, which image an overlay goes on,
and what lies under a point (segment names, dose, SUV)."""

from __future__ import annotations

import numpy as np
import pytest

from dicomtui.core.overlay import (
    Layer,
    OverlayStyle,
    choose_base,
    colour_map,
    composite,
    labels_at,
    legend,
    outline,
    overlay_slice,
)
from dicomtui.core.viewgeom import acquired, anatomical
from dicomtui.core.volume import PLANES, Segment, Volume, display

RED, GREEN = (255, 0, 0), (0, 200, 0)
GREY = 100  # the base's value everywhere: shown grey GREY with window (127.5, 255)


def affine(spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0)) -> np.ndarray:
    a = np.eye(4)
    a[:3, :3] = np.diag(spacing)
    a[:3, 3] = origin
    return a


def base(shape=(6, 12, 14), **kw) -> Volume:
    return Volume(np.full(shape, GREY, dtype=np.float32), affine(), name="CT", modality="CT",
                  series_uid="1.2.3.1", **kw)


def labels(array: np.ndarray, aff: np.ndarray | None = None, ref: str = "1.2.3.1") -> Volume:
    segments = (Segment(1, "Liver", RED), Segment(2, "Tumour", GREEN))
    return Volume(array.astype(np.uint8), affine() if aff is None else aff, name="SEG", modality="SEG",
                  segments=segments, referenced_series_uid=ref, series_uid="1.2.3.9")


def grey_of(volume: Volume, pv, s: int) -> np.ndarray:
    return display(pv.slice(s), 127.5, 255)


def square_mask(shape=(6, 12, 14)) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.uint8)
    mask[2:5, 3:7, 2:8] = 1  # slices 2-4, rows 3-6, columns 2-7
    return mask


def test_outline_pixels_are_exactly_the_mask_boundary() -> None:
    ct, seg = base(), labels(square_mask())
    pv = acquired(ct, "axial")
    out = overlay_slice(ct, pv, 3, [seg], grey_of(ct, pv, 3), OverlayStyle("outline"))
    red = np.all(out == RED, axis=2)
    expected = np.zeros((12, 14), dtype=bool)
    expected[3:7, 2:8] = True
    expected[4:6, 3:7] = False  # the square minus its inside: rows 3 and 6, columns 2 and 7
    assert np.array_equal(red, expected)
    assert np.all(out[~expected] == GREY)  # inside and outside untouched
    # a slice without the mask: nothing drawn
    assert np.all(overlay_slice(ct, pv, 0, [seg], grey_of(ct, pv, 0)) == GREY)


def test_outline_between_two_segments_and_not_at_the_image_edge() -> None:
    row = np.array([[0, 1, 1, 1, 2, 2, 2]], dtype=np.uint8)
    assert outline(row).tolist() == [[False, True, False, True, True, False, False]]  # 2 ends at the image edge


def test_filled_labels_blend_the_segment_colour_with_its_alpha_under_the_outline() -> None:
    ct, seg = base(), labels(square_mask())
    pv = acquired(ct, "axial")
    style = OverlayStyle("filled", fill_alpha=0.4)
    out = overlay_slice(ct, pv, 3, [seg], grey_of(ct, pv, 3), style)
    assert tuple(out[4, 4]) == (round(0.6 * GREY + 0.4 * 255), round(0.6 * GREY), round(0.6 * GREY))
    assert tuple(out[3, 2]) == RED  # the outline stays opaque over the fill
    assert tuple(out[0, 0]) == (GREY,) * 3
    assert np.all(overlay_slice(ct, pv, 3, [seg], grey_of(ct, pv, 3), OverlayStyle("off")) == GREY)


def test_same_grid_labels_are_used_as_is_in_every_plane() -> None:
    ct, seg = base(), labels(square_mask())
    for plane in PLANES:
        pv = acquired(ct, plane)
        layer = Layer(ct, seg)
        for s in range(len(pv)):
            got = layer.slice(pv, s)
            assert np.shares_memory(got, seg.array)  # no resampling, no copy
            assert np.array_equal(got, acquired(seg, plane).slice(s))


def test_an_off_grid_label_volume_is_resampled_by_nearest_voxel_through_lps() -> None:
    # labels on a 2 mm grid from (1.25, 1.25, 0) mm: i = 2…4 covers x in [4.25, 10.25) mm → base columns 5…10
    mask = np.zeros((3, 6, 7), dtype=np.uint8)
    mask[:, 1:4, 2:5] = 2  # j = 1…3: y in [2.25, 8.25) → rows 3…8
    seg = labels(mask, affine((2.0, 2.0, 2.0), (1.25, 1.25, 0.0)))
    ct = base()
    layer = Layer(ct, seg)
    assert not layer.same_grid
    got = layer.slice(acquired(ct, "axial"), 2)
    expected = np.zeros((12, 14), dtype=np.uint8)
    expected[3:9, 5:11] = 2
    assert np.array_equal(got, expected)
    # coronal: rows run inferior (z down), columns x: z = 0…5 mm is inside k = 0…2 (z < 5 mm: rint(z / 2) ≤ 2)
    cor = acquired(ct, "coronal")
    y5 = next(s for s in range(len(cor)) if round(cor.lps(0, 0, s)[1]) == 5)
    got = layer.slice(cor, y5)
    assert set(np.unique(got[:, 5:11])) == {2} and not got[:, :5].any() and not got[:, 11:].any()
    # drawn: its outline in the second segment's colour
    out = overlay_slice(ct, acquired(ct, "axial"), 2, [seg], grey_of(ct, acquired(ct, "axial"), 2))
    assert tuple(out[3, 5]) == GREEN and tuple(out[5, 7]) == (GREY,) * 3


def test_labels_follow_an_oblique_base_on_its_anatomical_planes() -> None:
    c, s_ = np.cos(np.radians(20)), np.sin(np.radians(20))
    turned = np.eye(4)
    turned[:3, :3] = [[c, -s_, 0], [s_, c, 0], [0, 0, 1]]
    ct = Volume(np.full((6, 12, 14), GREY, np.float32), turned, modality="CT", series_uid="1.2.3.1")
    seg = labels(square_mask(), turned)
    pv = anatomical(ct, "axial")
    layer = Layer(ct, seg)
    s = next(n for n in range(len(pv)) if round(pv.lps(0, 0, n)[2]) == 3)
    got = layer.slice(pv, s)
    # each labelled shown pixel's LPS point falls in a labelled voxel of the SEG (nearest)
    rows, cols = np.nonzero(got)
    assert len(rows) > 10
    for r, col in zip(rows, cols, strict=True):
        ijk = np.rint(np.linalg.inv(turned) @ np.append(pv.lps(col, r, s), 1.0))[:3].astype(int)
        assert seg.array[ijk[2], ijk[1], ijk[0]] == 1


def dose(max_gy: float = 10.0) -> Volume:
    """A dose rising along x: 0 Gy at column 0 to ``max_gy`` at column 10, on a 2 mm grid (its own)."""
    x = np.linspace(0.0, max_gy, 6, dtype=np.float32)
    array = np.broadcast_to(x, (4, 7, 6)).copy()
    return Volume(array, affine((2.0, 2.0, 2.0)), name="Dose", modality="RTDOSE", units="GY")


def test_dose_wash_is_drawn_above_its_threshold_only() -> None:
    ct, rd = base(), dose()
    pv = acquired(ct, "axial")
    grey = grey_of(ct, pv, 2)
    for fraction in (0.1, 0.5):
        style = OverlayStyle(dose_threshold=fraction, dose_alpha=0.5)
        out = overlay_slice(ct, pv, 2, [rd], grey, style)
        # dose at column c (x = c mm): c Gy up to 10; the grid ends half a voxel (1 mm) past its last centre
        gy = np.minimum(np.arange(14, dtype=float), 10.0)
        washed = ~np.all(out[0] == GREY, axis=1)
        assert washed.tolist() == [bool(fraction * 10 <= g) and c <= 11 for c, g in enumerate(gy)]
        top = 0.5 * GREY + 0.5 * colour_map(np.array(1.0))
        assert np.allclose(out[0, 10], top, atol=1)  # the maximum: viridis' yellow, half over the grey


def test_which_image_an_overlay_is_drawn_on() -> None:
    ct = base()
    other = Volume(np.zeros((3, 5, 5), np.float32), affine((3.0, 3.0, 3.0), (100, 100, 100)), series_uid="1.2.3.2")
    seg = labels(square_mask(), ref="1.2.3.1")
    assert choose_base(seg, [other, ct]) == (1, "")
    unreferenced = labels(square_mask(), ref="")
    assert choose_base(unreferenced, [other, ct]) == (1, "")  # the first on its grid
    elsewhere = labels(np.zeros((2, 2, 2)), affine(origin=(500, 0, 0)), ref="9.9")
    index, why = choose_base(elsewhere, [other, ct])
    assert index is None and "9.9 is not loaded" in why
    assert choose_base(dose(), [other, ct]) == (1, "")  # a dose on its own grid: the image it overlaps


def test_labels_dose_and_suv_at_a_point() -> None:
    pet = base()
    pet.suv_factors = {"bw": 0.002, "lbm": 0.0015}
    both = square_mask()
    both[3, 4, 4] = 2
    seg, rd = labels(both), dose()
    at = labels_at(pet, [seg, rd], (4.0, 4.0, 3.0))
    assert at.segments == ["Tumour"] and at.dose_gy == [pytest.approx(4.0)]
    assert at.suv == {"bw": pytest.approx(GREY * 0.002), "lbm": pytest.approx(GREY * 0.0015)}
    assert at.text() == "Tumour · dose 4 Gy · SUVbw 0.2 · SUVlbm 0.15"
    outside = labels_at(base(), [seg, rd], (13.0, 0.0, 0.0))
    assert outside.segments == [] and outside.dose_gy == [None] and outside.text() == ""


def test_legend_names_segments_with_their_colours_and_the_dose_threshold() -> None:
    entries = legend([labels(square_mask()), dose()], OverlayStyle(dose_threshold=0.2))
    assert entries[:2] == [("Liver", RED), ("Tumour", GREEN)]
    assert entries[2][0] == "dose ≥ 2 Gy (20% of 10 Gy)"


def test_composite_keeps_colour_images_and_returns_a_new_array() -> None:
    image = np.zeros((2, 3, 3), dtype=np.uint8)
    seg = labels(np.ones((1, 2, 3)))
    out = composite(image, [(Layer(base((1, 2, 3)), seg), np.ones((2, 3), np.uint8))], OverlayStyle("filled"))
    assert out is not image and out.shape == (2, 3, 3) and not image.any()


def test_a_coarse_dose_is_sampled_every_half_voxel_and_stays_the_trilinear_dose() -> None:
    """A 4 mm dose on a 0.5 mm base: sampled at every 4th pixel and linear between: within 0.5 % of the maximum
    of sampling every pixel trilinearly (the Gaussian is smooth at 4 mm), exact at the sampled pixels. Past the
    grid's edge (x, y > 44 mm: pixels 89 on) trilinear steps to 0 where the coarse sampling ramps down over one
    interval of 4 pixels: compared inside."""
    from dicomtui.core.overlay import resample_slice
    from dicomtui.core.viewgeom import trilinear

    k, j, i = np.mgrid[0:10, 0:12, 0:12].astype(np.float32)
    gy = 50 * np.exp(-((i - 6) ** 2 + (j - 5) ** 2 + (k - 5) ** 2) / 8).astype(np.float32)
    rd = Volume(gy, affine((4.0, 4.0, 4.0), (-2.0, -2.0, 0.0)), modality="RTDOSE", units="GY")
    ct = Volume(np.zeros((40, 90, 100), np.float32), affine((0.5, 0.5, 1.0)))
    pv = acquired(ct, "axial")
    got = resample_slice(rd, pv, 20, nearest=False)
    r, c = np.mgrid[0:90, 0:100].astype(float)
    m = np.linalg.inv(rd.affine) @ pv.to_lps
    ii, jj, kk = (m[a, 0] * c + m[a, 1] * r + m[a, 2] * 20 + m[a, 3] for a in range(3))
    full = trilinear(rd.array, ii, jj, kk, 0.0)
    assert got.shape == full.shape
    assert np.abs(got - full)[:84, :84].max() < 0.005 * gy.max()
    assert np.allclose(got[::4, ::4], full[::4, ::4], atol=1e-4)
    assert not got[:, 93:].any() and not got[93:].any()  # 0 a node past the edge


def _gaussian_dose(flip: bool = False) -> Volume:
    """A Gaussian dose on a 4 mm grid from (-2, -2, 0) mm: (12, 12, 10) voxels, 50 Gy at its peak; ``flip``: the
    same doses with columns stored right to left (a negative x spacing)."""
    k, j, i = np.mgrid[0:10, 0:12, 0:12].astype(np.float32)
    gy = 50 * np.exp(-((i - 6) ** 2 + (j - 5) ** 2 + (k - 5) ** 2) / 8).astype(np.float32)
    aff = affine((4.0, 4.0, 4.0), (-2.0, -2.0, 0.0))
    if flip:
        gy, aff[0, 0], aff[0, 3] = gy[:, :, ::-1].copy(), -4.0, 42.0
    return Volume(gy, aff, modality="RTDOSE", units="GY")


def _trilinear_on_display(rd: Volume, pv, s: int, crop, height: int, width: int) -> np.ndarray:
    from dicomtui.core.viewgeom import trilinear

    top, left, rows, cols = crop
    y, x = np.mgrid[0:height, 0:width].astype(float)
    r, c = top - 0.5 + (y + 0.5) * rows / height, left - 0.5 + (x + 0.5) * cols / width
    m = np.linalg.inv(rd.affine) @ pv.to_lps
    ii, jj, kk = (m[a, 0] * c + m[a, 1] * r + m[a, 2] * s + m[a, 3] for a in range(3))
    return trilinear(rd.array, ii, jj, kk, 0.0)


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("plane", ["axial", "coronal", "sagittal"])
def test_a_dose_is_sampled_at_the_display_pixels_directly(plane: str, flip: bool) -> None:
    """The dose on a zoomed crop drawn on more pixels than it has (as the slice view resizes it), reaching past
    the dose grid: equal to sampling every display pixel's centre trilinearly, in every plane, for a dose stored
    in either direction (one interpolation, not a resampled slice resized again)."""
    from dicomtui.core.overlay import dose_on_display

    rd = _gaussian_dose(flip)
    ct = Volume(np.zeros((100, 100, 100), np.float32), affine((0.5, 0.5, 0.5)))
    pv = acquired(ct, plane)
    s, crop, height, width = 30, (10, 20, 80, 75), 170, 130
    got = dose_on_display(rd, pv, s, crop, height, width)
    full = _trilinear_on_display(rd, pv, s, crop, height, width)
    assert got.shape == (height, width) and got.dtype == np.float32
    assert full.max() > 0.3 * rd.array.max() and (full == 0).any()  # the peak region and past the grid's edge
    assert np.abs(got - full).max() < 1e-3 * rd.array.max()


def test_a_dose_far_from_the_shown_pixels_is_zero_without_padding_the_distance() -> None:
    """A fine dose grid (0.1 mm) a metre beside the CT: nothing of it is shown, and no slab the size of the gap
    between them is built (only the pixels inside the grid are resized)."""
    from dicomtui.core.overlay import dose_on_display

    far = Volume(np.ones((4, 50, 50), np.float32), affine((0.1, 0.1, 0.5), (1000.0, 0.0, 10.0)), modality="RTDOSE",
                 units="GY")
    ct = Volume(np.zeros((100, 100, 100), np.float32), affine((0.5, 0.5, 0.5)))
    for s in (20, 21):  # z 10 mm: in the dose's slab; 10.5 mm: at its edge
        got = dose_on_display(far, acquired(ct, "axial"), s, (0, 0, 100, 100), 400, 400)
        assert got.shape == (400, 400) and not got.any()


def test_a_dose_oblique_to_the_shown_plane_stays_the_trilinear_dose() -> None:
    """A dose grid turned 30° about z against the CT: sampled every half dose voxel and bilinear between, within
    4 % of the maximum of full trilinear sampling where the dose is above 5 % (this Gaussian is sharp: σ = 2
    voxels; trilinear has kinks along the turned grid lines that bilinear nodes round off, 3.5 % here, 2.3 % at a
    third of a voxel: an oblique dose is rare, the half-voxel nodes keep it fast)."""
    from dicomtui.core.overlay import dose_on_display

    rd = _gaussian_dose()
    turn = np.eye(4)
    a = np.radians(30)
    turn[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    rd = Volume(rd.array, turn @ rd.affine, modality="RTDOSE", units="GY")
    ct = Volume(np.zeros((100, 100, 100), np.float32), affine((0.5, 0.5, 0.5)))
    pv = acquired(ct, "axial")
    got = dose_on_display(rd, pv, 40, (0, 0, 100, 100), 150, 150)
    full = _trilinear_on_display(rd, pv, 40, (0, 0, 100, 100), 150, 150)
    inside = full > 0.05 * rd.array.max()
    assert np.abs(got - full)[inside].max() < 0.04 * rd.array.max()


def test_a_layer_keeps_what_it_drew_for_the_same_display() -> None:
    """A cursor move redraws the same slice: the dose on the display is not sampled again."""
    ct = Volume(np.zeros((80, 80, 80), np.float32), affine((0.5, 0.5, 0.5)))
    layer, pv = Layer(ct, _gaussian_dose()), acquired(ct, "axial")
    first = layer.shown(pv, 30, (0, 0, 80, 80), 120, 120)
    assert layer.shown(pv, 30, (0, 0, 80, 80), 120, 120) is first
    assert layer.shown(pv, 31, (0, 0, 80, 80), 120, 120) is not first


def test_the_wash_on_a_grey_image_by_table_equals_the_blend_on_colour() -> None:
    """A grey image takes the wash by one table lookup, a colour one by blending the washed pixels: the same
    colours to the last bit, at every grey level and dose level, above and below the threshold."""
    rng = np.random.default_rng(7)
    grey = rng.integers(0, 256, (64, 80), dtype=np.uint8)
    values = rng.uniform(0, 12, (64, 80)).astype(np.float32)
    values[0, :4] = (0.0, 1.2, 12.0, 1.19999)  # 0, the threshold (10 % of 12), the maximum, just below it
    layer = Layer(Volume(np.zeros((1, 2, 2), np.float32), affine()),
                  Volume(np.array([[[0.0, 12.0], [1.0, 2.0]]], np.float32), affine(), modality="RTDOSE"))
    for style in (OverlayStyle(dose_threshold=0.1, dose_alpha=0.5), OverlayStyle(dose_threshold=0.55,
                                                                                 dose_alpha=0.3)):
        by_table = composite(grey, [(layer, values)], style)
        by_blend = composite(np.repeat(grey[:, :, None], 3, axis=2), [(layer, values)], style)
        assert np.array_equal(by_table, by_blend)
    assert (by_table[0, 0] == grey[0, 0]).all() and not (by_table[0, 2] == grey[0, 2]).all()


def test_filled_labels_by_table_are_the_blend_of_each_pixel() -> None:
    """The fill goes through a (label, level) table per channel: every pixel inside a segment is its colour
    blended at the fill alpha over what was there (to the bit), outside and unknown labels unchanged."""
    from dicomtui.core.overlay import _blend

    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    values = rng.integers(0, 4, (40, 50)).astype(np.uint8)  # 3: no such segment
    seg = labels(np.zeros((1, 40, 50)))
    style = OverlayStyle("filled", fill_alpha=0.35)
    out = composite(image, [(Layer(base((1, 40, 50)), seg), values)], style)
    edge = outline(values) & (values < 3)
    for number, colour in ((1, RED), (2, GREEN)):
        inside = (values == number) & ~edge
        expected = _blend(image[inside], np.array(colour, np.float32), 0.35)
        assert np.array_equal(out[inside], expected)
    assert np.array_equal(out[values == 0], image[values == 0]) and np.array_equal(out[values == 3],
                                                                                   image[values == 3])
