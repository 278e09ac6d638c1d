"""Tab and shift+Tab in the dialogs with fields: priority bindings, so the focus moves before the next keys are
forwarded. Without them the app sends a key typed right after Tab (a fast typist, a paste, tmux send-keys) to the
field that had the focus, because Tab itself is handled only after it has bubbled up from that field."""

from __future__ import annotations

from textual.binding import Binding

FIELD_KEYS = [
    Binding("tab", "app.focus_next", "Next field", show=False, id="field_next", priority=True),
    Binding("shift+tab", "app.focus_previous", "Previous field", show=False, id="field_previous", priority=True),
]
