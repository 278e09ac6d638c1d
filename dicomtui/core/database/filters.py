"""The search box in SQL: every word must match some searchable column of the level (``levels.COLUMNS``),
case-insensitively, beyond ASCII too."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..levels import Level, searchable


def filter_sql(level: Level | str, text: str | None,
               aliases: Mapping[Level, str] | None = None) -> tuple[str, list[Any]]:
    """WHERE clause and its arguments for a search box over ``level``'s searchable columns.

    A word without wildcards matches anywhere in a value; with ``*`` or ``?`` it must match a whole value
    (``doe*`` = values starting with "doe"). ``aliases`` gives the table alias (with its dot) of each level whose
    table the query joins (a study row's PatientName is ``p.PatientName``); "" for a query of one table.
    """
    if not text or not text.strip():
        return "", []
    aliases = aliases or {}
    columns = [f"{aliases.get(c.owner, '')}{c.keyword}" for c in searchable(level)]
    clauses, args = [], []
    for word in text.split():
        if "*" in word or "?" in word:
            pattern = like_escape(word).replace("*", "%").replace("?", "_")
        else:
            pattern = f"%{like_escape(word)}%"
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
