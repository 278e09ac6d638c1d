"""The network screen's thumbnail of the query result under the cursor (issue 18): the series' rendered image
fetched over DICOMweb (:func:`dicomtui.core.net.web_rendered.fetch_thumbnail`) in a thread worker, cached per
series, dropped when the cursor moved on before it came; drawn with the viewer's renderer (kitty, sixel or
half-blocks: :func:`.graphics.image_class`), scaled once here to the cells it gets, as the slice view does.
A DIMSE node has no rendered images: the panel says so."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image as PILImage
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from ...core.errors import NetworkError, NodeError
from .graphics import get_cell_size, image_class, renderer_name
from .halfblocks import HalfBlocks

if TYPE_CHECKING:
    from ...core.net.nodes import RemoteNode
    from ...core.net.web_rendered import RenderedThumbnail

NO_DIMSE_THUMBNAIL = "No preview over DIMSE (a DICOMweb node's rendered images show here)"
CAPTION = "Preview: the middle instance"  # of the series, as the server rendered it (/rendered)


def drawn_size(renderer: str, cells: tuple[int, int], cell: tuple[int, int]) -> tuple[int, int]:
    """The image size in pixels (width, height) a renderer draws over ``cells`` (columns, rows) of ``cell``
    (width, height) pixels: two pixels a cell for half-blocks, whole 6-pixel bands for sixel (a taller image
    would spill into the row below and scroll), exactly the cells for kitty."""
    (cols, rows), (cell_w, cell_h) = cells, cell
    if renderer in ("halfblock", "unicode"):
        return cols, rows * 2
    if renderer == "sixel":
        return cols * cell_w, max(rows * cell_h // 6 * 6, 6)
    return cols * cell_w, rows * cell_h


def fit_cells(shape: tuple[int, int], room: tuple[int, int], cell: tuple[int, int]) -> tuple[int, int]:
    """The cells (columns, rows) an image of ``shape`` (rows, columns) takes inside ``room`` (columns, rows),
    its aspect kept (cells are ``cell`` (width, height) pixels)."""
    rows, cols = shape
    scale = min(room[0] * cell[0] / cols, room[1] * cell[1] / rows)
    return max(round(cols * scale / cell[0]), 1), max(round(rows * scale / cell[1]), 1)


class ThumbnailFetched(Message):
    """A thumbnail came (or not: ``thumb`` None and ``problem`` the sentence) for the result ``key``."""

    def __init__(self, key: tuple[str, str, str], thumb: RenderedThumbnail | None, problem: str = "") -> None:
        super().__init__()
        self.key, self.thumb, self.problem = key, thumb, problem


class SeriesThumbnail(Vertical):
    """The rendered image of the result under the cursor and one caption line. :meth:`want` asks for one;
    ``shown`` is the pixels drawn (tests look at it), ``cache`` the fetched thumbnails by (node, study, series)."""

    DEFAULT_CSS = """
    SeriesThumbnail { width: 1fr; height: 1fr; }
    SeriesThumbnail #thumb-caption { height: auto; max-height: 3; color: $text-muted; }
    SeriesThumbnail #thumb-box { height: 1fr; align: center middle; }
    """

    def __init__(self, renderer: str = "auto", **kwargs) -> None:
        super().__init__(**kwargs)
        self.image_cls = image_class(renderer)
        self.cache: dict[tuple[str, str, str], RenderedThumbnail] = {}
        self.wanted: tuple[str, str, str] | None = None
        self.shown: np.ndarray | None = None
        self._cancel = threading.Event()
        self._image: Widget | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="thumb-caption")
        yield Vertical(id="thumb-box")

    @property
    def caption(self) -> str:
        return str(self.query_one("#thumb-caption", Static).render())

    def say(self, text: str) -> None:
        """Show ``text`` and no image."""
        self.query_one("#thumb-caption", Static).update(text)
        self.shown = None
        if self._image is not None:
            self._image.remove()  # a kitty placement is deleted on unmount, not by hiding
            self._image = None

    def want(self, node: RemoteNode | None, web: bool, study_uid: str, series_uid: str = "") -> None:
        """Show the thumbnail of a study (its first series) or a series at ``node``: from the cache, else fetched
        in a worker (the one fetching for the previous row is cancelled). No node or row: nothing; a DIMSE node:
        the sentence that there is none."""
        if node is not None and (node.name, study_uid, series_uid) == self.wanted and self.wanted not in self.cache:
            return  # being fetched (Enter on the row it is for)
        self._cancel.set()
        if node is None or not study_uid:
            self.wanted = None
            self.say("")
            return
        if not web:
            self.wanted = None
            self.say(NO_DIMSE_THUMBNAIL)
            return
        key = (node.name, study_uid, series_uid)
        self.wanted = key
        if key in self.cache:
            self._show(self.cache[key])
            return
        self.say("Fetching the rendered image …")
        self._cancel = threading.Event()
        self._fetch(node, key, self._cancel)

    @work(thread=True, exclusive=True, group="thumbnail", exit_on_error=False)
    def _fetch(self, node: RemoteNode, key: tuple[str, str, str], cancel: threading.Event) -> None:
        from ...core.net.web_rendered import fetch_thumbnail

        try:
            thumb = fetch_thumbnail(node, key[1], key[2], cancel)
        except (NetworkError, NodeError) as exc:
            self.post_message(ThumbnailFetched(key, None, f"✗ {exc}"))
            return
        if thumb is not None:  # None: cancelled, the cursor moved on
            self.post_message(ThumbnailFetched(key, thumb))

    @on(ThumbnailFetched)
    def _fetched(self, message: ThumbnailFetched) -> None:
        message.stop()
        if message.thumb is not None:
            self.cache[message.key] = message.thumb
        if message.key != self.wanted:
            return
        if message.thumb is None:
            self.say(message.problem)
        else:
            self._show(message.thumb)

    def _show(self, thumb: RenderedThumbnail) -> None:
        if thumb.pixels is None:
            self.say(thumb.reason)
            return
        self.query_one("#thumb-caption", Static).update(CAPTION)
        self.draw(thumb.pixels)

    def draw(self, pixels: np.ndarray) -> None:
        """Draw ``pixels`` (uint8 grey (rows, columns) or RGB (rows, columns, 3)) as large as the box allows."""
        if self.image_cls is None:
            return
        box = self.query_one("#thumb-box")
        room = (max(box.size.width, 1), max(box.size.height, 1)) if box.size.width else (24, 10)
        size = get_cell_size()
        cell = (size.width, size.height) if size.width > 0 and size.height > 0 else (10, 20)
        cells = fit_cells(pixels.shape[:2], room, cell)
        width, height = drawn_size(renderer_name(self.image_cls), cells, cell)
        shown = np.asarray(PILImage.fromarray(pixels).resize((width, height), PILImage.Resampling.BILINEAR))
        if self._image is None:
            self._image = self.image_cls()
            box.mount(self._image)
        self._image.styles.width, self._image.styles.height = cells
        if self.image_cls is HalfBlocks:
            self._image.show(shown)
        else:
            self._image.image = PILImage.fromarray(shown)  # type: ignore[attr-defined]
        self.shown = shown
