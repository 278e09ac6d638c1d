"""TEMPORARY re-export: ``Loadable`` now lives in ``plugin.py``. tui/app.py and tui/screens/examine.py import it
from here; the faces move to ``dicomtui.core.examine`` (or ``.plugin``) at the merge — delete this file then."""

from .plugin import Loadable

__all__ = ["Loadable"]
