"""The search box in SQL: every word must match some searchable column of the level (``levels.COLUMNS``),
case-insensitively, beyond ASCII too.

A search box finds: a word matches anywhere in a value, and its ``*`` / ``?`` wildcards stay inside that
substring search, so ``patient01*`` finds everything ``patient01`` finds and more (never less, as a whole-value
pattern would). A word starting with ``=`` is matched against whole values (``=CT`` is the value CT, not CTA;
``=doe*`` values starting with "doe"): the DICOM C-FIND meaning of wildcards (PS3.4 C.2.2.2.4), asked for
explicitly. :data:`FILTER_HELP` is the one-line hint a search box shows."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..levels import Level, searchable

EXACT = "="  # prefix of a word matched against whole values
FILTER_HELP = "words anywhere, * ? wildcards, =exact"


def filter_sql(level: Level | str, text: str | None,
               aliases: Mapping[Level, str] | None = None) -> tuple[str, list[Any]]:
    """WHERE clause and its arguments for a search box over ``level``'s searchable columns.

    A word matches anywhere in a value, ``*`` and ``?`` as wildcards inside it (``doe*j`` finds "Doe^John" and
    "MacDoe^Jo"); ``=word`` must match a whole value (``=doe*`` = values starting with "doe"). ``aliases`` gives
    the table alias (with its dot) of each level whose table the query joins (a study row's PatientName is
    ``p.PatientName``); "" for a query of one table.
    """
    if not text or not text.strip():
        return "", []
    aliases = aliases or {}
    columns = [f"{aliases.get(c.owner, '')}{c.keyword}" for c in searchable(level)]
    clauses, args = [], []
    for word in text.split():
        exact = word.startswith(EXACT) and len(word) > len(EXACT)
        word = word[len(EXACT):] if exact else word
        pattern = like_escape(word).replace("*", "%").replace("?", "_")
        pattern = pattern if exact else f"%{pattern}%"
        if word.isascii():
            tests = [f"CAST({c} AS TEXT) LIKE ? ESCAPE '\\'" for c in columns]
        else:
            tests = [f"casefold(CAST({c} AS TEXT)) LIKE ? ESCAPE '\\'" for c in columns]
            pattern = pattern.casefold()
        clauses.append("(" + " OR ".join(tests) + ")")
        args += [pattern] * len(columns)
    return "WHERE " + " AND ".join(clauses), args


def in_clause(where: str, args: list[Any], column: str, ids: Sequence[int] | None) -> tuple[str, list[Any]]:
    """Add ``column IN (ids)`` to a WHERE clause (nothing when ids is None: no restriction)."""
    if ids is None:
        return where, args
    clause = f"{column} IN ({','.join('?' * len(ids))})"
    return (f"{where} AND {clause}" if where else f"WHERE {clause}"), [*args, *ids]


def like_escape(word: str) -> str:
    """``word`` with LIKE's wildcards (% _) and the escape character made literal."""
    return re.sub(r"([%_\\])", r"\\\1", word)
