"""Writing an analysis out: its numbers as JSON (the whole result) and CSV (one row per point),
each written atomically and byte-identical for the same result."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..files import write_text_atomic


def write_numbers(stem: Path, result: Any, rows: Sequence[Mapping[str, object]]) -> list[Path]:
    """``stem.json`` (``result``, a dataclass or plain data) and ``stem.csv`` (``rows``)."""
    json_path = stem.with_name(f"{stem.name}.json")
    write_text_atomic(json_path, json.dumps(result, indent=2, sort_keys=True, default=_plain) + "\n")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    csv_path = stem.with_name(f"{stem.name}.csv")
    write_text_atomic(csv_path, buffer.getvalue())
    return [json_path, csv_path]


def _plain(value: Any) -> Any:
    """A dataclass as its fields (json.dumps calls this for what it cannot write itself)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
