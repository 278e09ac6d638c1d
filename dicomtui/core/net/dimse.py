"""TEMPORARY re-export module: the faces move to the new modules at the merge; delete then.

Exactly the names that ``dicomtui/cli.py`` and ``dicomtui/tui/screens/network.py`` import from here today.
Everything else imports :mod:`.echo`, :mod:`.send`, :mod:`.query`, :mod:`.retrieve`, :mod:`.doctor` and
:mod:`dicomtui.core.errors` directly.
"""

from ..errors import NetworkError as DimseError
from .doctor import doctor
from .echo import echo
from .query import RETURN_KEYS, QueryFilters, query
from .retrieve import retrieve
from .send import send

__all__ = ["RETURN_KEYS", "DimseError", "QueryFilters", "doctor", "echo", "query", "retrieve", "send"]
