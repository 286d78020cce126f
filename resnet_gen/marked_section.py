"""Generated blocks inside hand-written files: the text between a start and an end marker line.

The README carries generated tables this way (the catalog, the spec field reference); each is
rewritten in place, atomically, and everything outside its markers is left as it was.
"""

from __future__ import annotations

import stat
from pathlib import Path

from .errors import SpecError
from .files import target_of, write_text_atomic


def replace_marked_section(text: str, body: str, source: str, start: str, end: str) -> str:
    """``text`` with everything between the ``start`` and ``end`` markers replaced by ``body``."""
    begin = text.find(start)
    finish = text.find(end, begin + len(start)) if begin >= 0 else -1
    if begin < 0 or finish < 0 or text.count(start) != 1 or text.count(end) != 1:
        raise SpecError(f"{source}: needs exactly one '{start}' line followed by one '{end}' line")
    return text[: begin + len(start)] + "\n" + body + text[finish:]


MAX_FILE_BYTES = 10_000_000  # a README is tens of KB


def update_marked_file(path: Path, body: str, start: str, end: str) -> bool:
    """Rewrite the marked section of ``path`` in place (a link's target, the link kept); returns
    whether anything changed. The file must be UTF-8 text of a sane size."""
    target = target_of(path)
    try:
        info = target.stat()
        if not stat.S_ISREG(info.st_mode):
            raise SpecError(f"{path}: is not a regular file; name the Markdown file to update")
        if info.st_size > MAX_FILE_BYTES:
            raise SpecError(
                f"{path}: has {info.st_size:,} bytes; the file to update is a Markdown file of at most {MAX_FILE_BYTES:,}"
            )
        raw = target.read_bytes()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpecError(
            f"{path}:{line}: byte 0x{raw[exc.start]:02x} is not valid UTF-8; save the file as UTF-8"
        ) from None
    new = replace_marked_section(text, body, str(path), start, end)
    if new == text:
        return False
    write_text_atomic(target, new)
    return True
