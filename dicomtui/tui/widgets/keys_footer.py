"""The footer of every screen: Textual's, except that a terminal too narrow for every key (80 columns) keeps the
app's Help and Quit keys and drops the screen's last keys (and the command palette's key) instead."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Footer

KEEP = ("help", "quit")  # the app's actions that stay in the footer at any width
OTHER = 10  # cells assumed for a footer item that is not a single key (a group of keys)


def _width(item: Widget) -> int:
    """Cells a footer key takes: " k " and "description " (Textual's FooterKey padding)."""
    key, description = getattr(item, "key_display", None), getattr(item, "description", None)
    if key is None or description is None:
        return OTHER
    return len(key) + len(description) + 3


class KeysFooter(Footer):
    """A footer that never loses Help and Quit: when its keys are wider than the terminal, the screen's keys are
    kept from the left while they fit beside Help and Quit (the rest are in the help, ``?``)."""

    def compose(self) -> ComposeResult:
        items = list(super().compose())
        room = self.app.size.width
        if sum(_width(item) for item in items) <= room:
            yield from items
            return
        items = [item for item in items if not item.has_class("-command-palette")]
        budget = room - sum(_width(item) for item in items if getattr(item, "action", None) in KEEP)
        fits = True
        for item in items:
            if getattr(item, "action", None) in KEEP:
                yield item
            elif fits and _width(item) <= budget:
                budget -= _width(item)
                yield item
            else:
                fits = False

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != getattr(self, "_laid_out_for", None):
            self._laid_out_for = event.size.width
            self.call_after_refresh(self.recompose)
