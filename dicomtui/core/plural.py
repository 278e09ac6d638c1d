"""Counts in words: "1 instance", "2 instances", "1 study", "3 series" (the faces' status lines and reports)."""

from __future__ import annotations

__all__ = ["counted"]

IRREGULAR = {"series": "series", "study": "studies", "entry": "entries"}


def counted(n: int, noun: str) -> str:
    """``n`` and ``noun`` (singular) in the number ``n`` asks for: ``counted(1, "study")`` → "1 study",
    ``counted(2, "study")`` → "2 studies", ``counted(0, "series")`` → "0 series"; nouns not in ``IRREGULAR``
    take an "s"."""
    return f"{n} {noun}" if n == 1 else f"{n} {IRREGULAR.get(noun, noun + 's')}"
