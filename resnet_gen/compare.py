"""Compare two specs: the resolved fields that differ, and per-stage numbers side by side."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from .analysis import Report, Row

# Identity, not architecture: every pair of specs differs here.
_IGNORED = frozenset({"name", "description"})


class _Absent:
    """A field one side does not have (a list item past its end)."""

    def __repr__(self) -> str:
        return "(absent)"


ABSENT: Any = _Absent()


def _walk(old: Any, new: Any, path: str, out: list[tuple[str, Any, Any]]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys()):
            if not path and key in _IGNORED:
                continue
            _walk(old.get(key, ABSENT), new.get(key, ABSENT), f"{path}.{key}" if path else key, out)
    elif isinstance(old, list) and isinstance(new, list):
        for index in range(max(len(old), len(new))):
            left = old[index] if index < len(old) else ABSENT
            right = new[index] if index < len(new) else ABSENT
            _walk(left, right, f"{path}[{index}]", out)
    elif old != new:
        out.append((path, old, new))


def field_changes(old: BaseModel, new: BaseModel) -> list[tuple[str, Any, Any]]:
    """(dotted path, old, new) for each resolved field that differs, in field order.

    Nested mappings and lists are compared item by item; a whole value stands for a subtree
    only where the other side is not of the same kind (``null`` -> mapping, a stage only one
    side has). :data:`ABSENT` marks a side without that list item.
    """
    out: list[tuple[str, Any, Any]] = []
    _walk(old.model_dump(mode="json"), new.model_dump(mode="json"), "", out)
    return out


@dataclass(frozen=True)
class StageDelta:
    """One report row of each side (``None`` where a side lacks that stage)."""

    name: str
    old: Row | None
    new: Row | None

    @property
    def changed(self) -> bool:
        if self.old is None or self.new is None:
            return True
        keys = ("output_size", "channels", "blocks", "params", "macs", "detail")
        return any(getattr(self.old, k) != getattr(self.new, k) for k in keys)


def stage_deltas(old: Report, new: Report) -> list[StageDelta]:
    """Rows matched by stage name, in the order of ``old`` then the stages only ``new`` has."""
    old_rows = {row.name: row for row in old.rows}
    new_rows = {row.name: row for row in new.rows}
    names = [row.name for row in old.rows] + [row.name for row in new.rows if row.name not in old_rows]
    return [StageDelta(name, old_rows.get(name), new_rows.get(name)) for name in names]


def format_delta(old: int, new: int) -> str:
    """``+1,234 (+5.0%)``; the percentage is left out when ``old`` is zero."""
    change = new - old
    if old == 0:
        return f"{change:+,}" if change else "0"
    return f"{change:+,} ({100 * change / old:+.1f}%)"
