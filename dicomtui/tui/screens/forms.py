"""Screens with fields: every field labelled, and Tab that moves before the next key.

``field()``: a label above a one-line field (a placeholder is no label: it disappears as soon as the field has a
value). ``FIELD_KEYS``: Tab and shift+Tab as priority bindings, so the focus moves before the next keys are
forwarded. Without them the app sends a key typed right after Tab (a fast typist, a paste, tmux send-keys) to the
field that had the focus, because Tab itself is handled only after it has bubbled up from that field."""

from __future__ import annotations

from textual.binding import Binding
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Label

FIELD_KEYS = [
    Binding("tab", "app.focus_next", "Next field", show=False, id="field_next", priority=True),
    Binding("shift+tab", "app.focus_previous", "Previous field", show=False, id="field_previous", priority=True),
]


def field(label: str, widget: Widget) -> Vertical:
    """``widget`` (an Input, Select or Switch) under its ``label``, one line each (``compact``), so that a whole
    form fits 80×24; the label is also the widget's tooltip. Styled by ``.field`` and ``.field-label``."""
    widget.tooltip = label
    widget.compact = True
    return Vertical(Label(label, classes="field-label"), widget, classes="field")
