"""The differences between two mapped cases (JSON values), as JSON Pointer paths.

Lists are compared position by position: the mapping writes persons, offences and pièces in
the order of the message, which a reprocess of the same bytes keeps, so a changed value shows
at its own path rather than as a removal and an insertion.
"""

from __future__ import annotations

from typing import Any

from replay.model import Change

_ABSENT: Any = None


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def diff(old: Any, new: Any, path: str = "") -> list[Change]:
    """Every leaf that differs between ``old`` and ``new``; ``None`` stands for absent."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[Change] = []
        for key in sorted(old.keys() | new.keys()):
            changes += diff(old.get(key, _ABSENT), new.get(key, _ABSENT), f"{path}/{_escape(str(key))}")
        return changes
    if isinstance(old, list) and isinstance(new, list):
        changes = []
        for index in range(max(len(old), len(new))):
            before = old[index] if index < len(old) else _ABSENT
            after = new[index] if index < len(new) else _ABSENT
            changes += diff(before, after, f"{path}/{index}")
        return changes
    if isinstance(old, dict | list) and new is None:
        return [Change(path, old, None)] if old else []
    if isinstance(new, dict | list) and old is None:
        return [Change(path, None, new)] if new else []
    if old == new and type(old) is type(new):
        return []
    return [Change(path or "/", old, new)]
