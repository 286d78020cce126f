"""Generated blocks inside hand-written files: the text between a start and an end marker line.

The README carries generated tables this way (the catalog, the spec field reference); each is
rewritten in place, atomically, and everything outside its markers is left as it was.
"""

from __future__ import annotations

from pathlib import Path

from .errors import SpecError
from .files import write_text_atomic


def replace_marked_section(text: str, body: str, source: str, start: str, end: str) -> str:
    """``text`` with everything between the ``start`` and ``end`` markers replaced by ``body``."""
    begin = text.find(start)
    finish = text.find(end, begin + len(start)) if begin >= 0 else -1
    if begin < 0 or finish < 0 or text.count(start) != 1 or text.count(end) != 1:
        raise SpecError(f"{source}: needs exactly one '{start}' line followed by one '{end}' line")
    return text[: begin + len(start)] + "\n" + body + text[finish:]


def update_marked_file(path: Path, body: str, start: str, end: str) -> bool:
    """Rewrite the marked section of ``path`` in place; returns whether anything changed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror}") from None
    new = replace_marked_section(text, body, str(path), start, end)
    if new == text:
        return False
    write_text_atomic(path, new)
    return True
