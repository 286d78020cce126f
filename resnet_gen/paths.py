"""File names from the command line and from ``extends``, checked before the system sees them.

``Path.exists()`` and ``Path.resolve()`` raise on names the system cannot take (a NUL byte, a
component over the file-name limit, a symlink loop); every check here answers with a located
problem instead, so that a hostile name is one error line and never a traceback.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

NAME_MAX = 255  # bytes in one path component (Linux, macOS, Windows alike)
PATH_MAX = 4096
_SHOWN = 60  # characters of a long name quoted back


def shown(text: str) -> str:
    """A name as messages quote it: a very long one is cut, so the message stays one short line."""
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}... ({len(text):,} characters)"


LOOP = "is a symlink loop (a link that leads back to itself)"


def name_problem(text: str) -> str | None:
    """Why ``text`` cannot name a file on this system, or None when it can (without what to do
    instead, which each caller says)."""
    if "\x00" in text:
        return "contains a NUL byte, which no file name can hold"
    try:
        encoded = os.fsencode(text)
    except UnicodeError:
        return "is not a valid file name (it holds characters the system cannot encode)"
    if len(encoded) > PATH_MAX:
        return f"is longer than the system's limit of {PATH_MAX:,} bytes for a path"
    if any(len(part) > NAME_MAX for part in encoded.split(b"/")):
        return f"has a name longer than the system's limit of {NAME_MAX} bytes"
    return None


def resolve(path: Path) -> Path | str:
    """``path`` made absolute with its links followed, or why that failed (LOOP, for a symlink loop)."""
    try:
        return path.resolve()
    except RuntimeError:  # Python < 3.13 reports a loop this way
        return LOOP
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return LOOP
        return f"cannot be resolved: {exc.strerror}"


def kind(path: Path) -> str:
    """``file``, ``folder``, ``other`` (a device, a socket...), ``missing`` or ``loop``;
    never raises, whatever the name."""
    if name_problem(str(path)) is not None:
        return "missing"
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return "loop" if exc.errno == errno.ELOOP else "missing"
    except ValueError:
        return "missing"
    if stat.S_ISREG(mode):
        return "file"
    return "folder" if stat.S_ISDIR(mode) else "other"
