"""Counts in words for people: "1 job", "2 jobs", "0 jobs" (no "1 jobs" or "job(s)")."""

from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """`n` and the noun, plural unless n is 1 (`plural` for nouns that do not just add an s)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
