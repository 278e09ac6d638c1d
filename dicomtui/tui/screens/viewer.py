"""The viewer: the Loaded data list and the slice view with its overlay line; Save writes the shown item, Close
takes it out of the list (and its memory back). Label volumes and doses loaded with an image are drawn over it
(g: outlines, filled, hidden; < and >: the dose threshold), named in the legend line under the image."""

from __future__ import annotations

import gc

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Header, Label, OptionList, Static
from textual.widgets.option_list import Option

from ...core.volume import PLANES
from ..widgets.keys_footer import KeysFooter
from ..widgets.overlay_layer import legend_text
from ..widgets.slice_view import SliceView, ViewerItem, Window


class ViewerScreen(Screen):
    DEFAULT_CSS = """
    #overlay-legend { height: auto; max-height: 3; width: 1fr; padding: 0 1; background: $panel; display: none; }
    """

    BINDINGS = [
        Binding("up", "step(1)", "Slice +1", id="slice_next", tooltip="Next slice (also the mouse wheel)"),
        Binding("down", "step(-1)", "Slice −1", id="slice_previous"),
        Binding("pageup", "step(10)", "+10", show=False, id="slice_next_10"),
        Binding("pagedown", "step(-10)", "−10", show=False, id="slice_previous_10"),
        Binding("home", "jump(0)", "First", show=False, id="slice_first"),
        Binding("end", "jump(-1)", "Last", show=False, id="slice_last"),
        Binding("tab", "next_plane", "Plane", id="plane_next", tooltip="Axial → coronal → sagittal"),
        Binding("a", "plane('axial')", "Axial", show=False, id="plane_axial"),
        Binding("c", "plane('coronal')", "Coronal", show=False, id="plane_coronal"),
        Binding("s", "plane('sagittal')", "Sagittal", show=False, id="plane_sagittal"),
        *[Binding(str(n), f"preset({n})", "W/L preset 1-9", show=n == 1, id=f"window_preset_{n}",
                  tooltip="Window/level presets: the file's own, then the modality's") for n in range(1, 10)],
        Binding("left", "level(-1)", "Level −", show=False, id="level_down"),
        Binding("right", "level(1)", "Level +", show=False, id="level_up"),
        Binding("left_square_bracket", "width(-1)", "Width −", show=False, id="width_down"),
        Binding("right_square_bracket", "width(1)", "Width +", show=False, id="width_up"),
        Binding("h", "cursor(0, -1)", "Cursor", show=False, id="cursor_left"),
        Binding("l", "cursor(0, 1)", "Cursor", show=False, id="cursor_right"),
        Binding("k", "cursor(-1, 0)", "Cursor", show=False, id="cursor_up"),
        Binding("j", "cursor(1, 0)", "Cursor", show=False, id="cursor_down"),
        Binding("shift+left", "pan(0, -1)", "Pan", show=False, id="pan_left",
                tooltip="Move the zoomed image (also: drag with the mouse)"),
        Binding("shift+right", "pan(0, 1)", "Pan", show=False, id="pan_right", tooltip="Move the zoomed image"),
        Binding("shift+up", "pan(-1, 0)", "Pan", show=False, id="pan_up", tooltip="Move the zoomed image"),
        Binding("shift+down", "pan(1, 0)", "Pan", show=False, id="pan_down", tooltip="Move the zoomed image"),
        Binding("m", "measure", "Measure", show=False, id="measure",
                tooltip="A measurement point at the cursor; the second shows the distance in mm"),
        Binding("M", "clear_measure", "Clear measure", show=False, id="measure_clear",
                tooltip="Remove the measurement"),
        Binding("r", "anatomical", "Oblique planes", show=False, id="planes_anatomical",
                tooltip="Oblique volume: acquired planes ↔ resampled on the true anatomical planes"),
        Binding("p", "play", "Cine", show=False, id="cine_play",
                tooltip="Cine: play / stop the plane's slices (frames), or the images one by one, at the file's rate"),
        Binding("f", "fit", "Fit", id="zoom_fit", tooltip="Zoom to fit"),
        Binding("plus,equals_sign", "zoom(2)", "Zoom +", show=False, id="zoom_in"),
        Binding("minus", "zoom(0.5)", "Zoom −", show=False, id="zoom_out"),
        Binding("t", "time(1)", "Next volume", show=False, id="time_next",
                tooltip="4D: next time point / b-value; images one by one: the next image"),
        Binding("T", "time(-1)", "Previous volume", show=False, id="time_previous"),
        Binding("g", "overlay_mode", "Overlays", show=False, id="overlay_mode",
                tooltip="Segmentations, structures and dose over the image: outlines → filled → hidden"),
        Binding("less_than_sign", "dose_threshold(-1)", "Dose threshold −", show=False, id="dose_threshold_down",
                tooltip="Dose wash: lower its threshold by 5 % of the maximum dose"),
        Binding("greater_than_sign", "dose_threshold(1)", "Dose threshold +", show=False, id="dose_threshold_up",
                tooltip="Dose wash: raise its threshold by 5 % of the maximum dose"),
        Binding("w", "save", "Save", id="save", tooltip="Write the volume to NIfTI or NRRD"),
        Binding("W", "save_series", "Save as series", show=False, id="save_series",
                tooltip="Write the volume (all volumes of a 4D item) as a new DICOM series into the database"),
        Binding("x", "close_item", "Close", show=False, id="close_item",
                tooltip="Take the shown item out of the viewer (its memory back)"),
        Binding("escape,b", "back", "Browser", id="back", tooltip="Back to the browser"),
    ]

    def __init__(self, renderer: str = "auto", select: int | None = None) -> None:
        super().__init__()
        self.renderer = renderer
        self.select = select  # the Loaded data item shown first (None: the newest)

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="loaded-pane"):
                yield Label("Loaded data", classes="pane-title")
                yield OptionList(id="loaded-list")
            with Vertical(id="view-pane"):
                yield Static("", id="overlay")
                yield SliceView(self.renderer, id="slice-view")
                yield Static("", id="overlay-legend", markup=False)  # names come from files
        yield KeysFooter()  # Help and Quit kept at 80 columns (widgets/keys_footer.py)

    def on_mount(self) -> None:
        self.watch(self.view, "readout", self._overlay)  # set in the slice view's redraw: the same frame
        self.watch(self.view, "shown", self._legend)  # a new item or overlay style: its legend
        self.refresh_list(self.select)
        self.query_one(SliceView).focus()

    @property
    def view(self) -> SliceView:
        return self.query_one(SliceView)

    @property
    def item(self) -> ViewerItem | None:
        return self.view.item

    def refresh_list(self, select: int | None = None) -> None:
        """Rebuild the Loaded data list and show ``select`` (default: the newest)."""
        options = self.query_one("#loaded-list", OptionList)
        options.clear_options()
        loaded = self.app.loaded
        for n, item in enumerate(loaded):
            v = item.volumes[0]
            shape = "×".join(str(s) for s in v.array.shape[2::-1]) + (f"×{len(item.volumes)}"
                                                                        if len(item.volumes) > 1 else "")
            if item.overlays:
                shape += f" +{len(item.overlays)} overlay{'s' if len(item.overlays) > 1 else ''}"
            options.add_option(Option(f"{item.name}\n  {shape}", id=str(n)))
        if loaded:
            index = min(len(loaded) - 1 if select is None else select, len(loaded) - 1)
            options.highlighted = index
            if loaded[index] is self.item:  # shown already: overlays may have been added to it
                self.view.redraw()
                self._legend()
            self.view.show(loaded[index])
        else:
            self.view.show(None)

    @on(OptionList.OptionSelected, "#loaded-list")
    @on(OptionList.OptionHighlighted, "#loaded-list")
    def _pick(self, event) -> None:
        item = self.app.loaded[int(event.option.id)]
        if item is not self.item:
            self.view.show(item)

    def _overlay(self, text: str) -> None:
        self.query_one("#overlay", Static).update(text, layout=False)  # one fixed line
        self._legend()  # what is under the cursor, where the line has room for it

    def _legend(self, _shown=None) -> None:
        """The legend line under the image (only when the item has overlays), and what is under the cursor:
        the overlay line above the image is often too long to show it."""
        legend = self.query_one("#overlay-legend", Static)
        overlays = self.item.overlays if self.item is not None else []
        legend.display = bool(overlays)
        line = legend_text(overlays, self.view.overlay_style)
        if overlays and self.view.under_cursor:
            line.append(f"  │ cursor: {self.view.under_cursor}")
        legend.update(line)

    # ---- actions: each sets one reactive of the slice view, which redraws once -------------------------------

    def action_step(self, delta: int) -> None:
        self.view.step(delta)

    def action_jump(self, where: int) -> None:
        if self.item:
            self.view.index = 0 if where == 0 else len(self.view.current_view()) - 1

    def action_plane(self, plane: str) -> None:
        if self.item:
            self.view.show_plane(plane)

    def action_next_plane(self) -> None:
        if self.item:
            self.view.show_plane(PLANES[(PLANES.index(self.view.plane) + 1) % len(PLANES)])

    def action_preset(self, n: int) -> None:
        if self.item is not None and n <= len(self.item.volume.windows):
            p = self.item.volume.windows[n - 1]
            self.view.window = Window(p.center, p.width, p.name)

    def action_level(self, sign: int) -> None:
        if self.item:
            w = self.view.window
            self.view.window = Window(w.center + sign * max(w.width / 20, 1), w.width)

    def action_width(self, sign: int) -> None:
        if self.item:
            w = self.view.window
            self.view.window = Window(w.center, max(w.width * (1.15 if sign > 0 else 1 / 1.15), 1))

    def action_cursor(self, drow: int, dcol: int) -> None:
        """Move the cursor by 1/64 of the shown part (at least a pixel); it starts at the shown part's centre."""
        if self.item:
            rows, cols = self.view.current_view().data.shape[1:3]  # grey [k, rows, cols] or RGB [k, rows, cols, 3]
            top, left, h, w = self.view.crop()
            r, c = self.view.cursor or (top + h // 2, left + w // 2)
            step = max(min(h, w) // 64, 1)
            self.view.cursor = (min(max(r + drow * step, 0), rows - 1), min(max(c + dcol * step, 0), cols - 1))

    def action_pan(self, drow: int, dcol: int) -> None:
        """Move the zoomed crop by an eighth of itself."""
        if self.item:
            _, _, h, w = self.view.crop()
            self.view.pan_by(drow * max(h / 8, 1), dcol * max(w / 8, 1))

    def action_play(self) -> None:
        was_playing = self.view.playing
        fps = self.view.play()
        if fps:
            self.notify(f"Cine: {fps:g} frames per second (p stops)", timeout=2)
        elif not was_playing and self.item:
            self.notify("One image only: nothing to play", timeout=2)

    def action_measure(self) -> None:
        self.view.mark()

    def action_clear_measure(self) -> None:
        if self.item:
            self.view.measure = ()

    def action_anatomical(self) -> None:
        if not self.item:
            return
        if not self.view.current_view().oblique:
            self.notify("The volume's axes are the patient's: its planes are the anatomical planes already")
            return
        self.view.anatomical = not self.view.anatomical

    def action_close_item(self) -> None:
        """Take the shown item out of the Loaded data list; the next one is shown (nothing when it was the
        last). Its volumes are freed with the last reference to them."""
        item = self.item
        if item is None:
            return
        index = next(n for n, loaded in enumerate(self.app.loaded) if loaded is item)
        del self.app.loaded[index]
        self.view.show(None)
        self.refresh_list(select=index)
        gc.unfreeze()  # the closed volume's objects were frozen when shown: collectable again
        gc.collect()

    def action_fit(self) -> None:
        if self.item:
            self.view.zoom_to(1.0)

    def action_zoom(self, factor: float) -> None:
        if self.item:
            self.view.zoom_to(self.view.zoom * factor)

    def action_overlay_mode(self) -> None:
        if not self.item:
            return
        if not self.item.overlays:
            self.notify("No segmentation, structure set or dose is drawn on this image", timeout=3)
            return
        self.view.overlay_style = self.view.overlay_style.next_mode()

    def action_dose_threshold(self, sign: int) -> None:
        if self.item and self.item.overlays:
            style = self.view.overlay_style
            self.view.overlay_style = style.with_threshold(round(style.dose_threshold + 0.05 * sign, 2))

    def action_time(self, delta: int) -> None:
        if self.item and len(self.item.volumes) > 1:
            self.view.time += delta

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_save(self) -> None:
        if self.item:
            self.app.save_item(self.item)  # screens/save.py: named from the series, never overwrites unasked

    def action_save_series(self) -> None:
        """The item as a new DICOM series (screens/save_series.py), derived from its source series: every volume
        of a 4D item (one series) or, when chosen there, only the shown one."""
        from .save_series import SaveSeriesScreen, source_series_uid

        if self.item is None or self.app.db is None:
            return
        volume = self.item.volume
        self.app.push_screen(SaveSeriesScreen(self.app.db_path, self.item.volumes, volume.name or self.item.name,
                                              source_series_uid(self.app.db, volume), shown=self.view.time,
                                              one_by_one=self.item in self.app.one_by_one))
