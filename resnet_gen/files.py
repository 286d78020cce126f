"""Writing output safely: atomic replace, so a failed write never leaves half a file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import SpecError


def write_bytes_atomic(path: Path, data: bytes, *, hint: str = "choose another folder with -o") -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    ``hint`` ends the message when the folder cannot be written: what the user can do instead."""
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise SpecError(f"{folder}: cannot write output here: {exc.strerror}; {hint}") from None
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException as exc:
        Path(temp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise SpecError(f"{path}: cannot write: {exc.strerror}") from None
        raise


def write_text_atomic(path: Path, text: str, *, hint: str = "choose another folder with -o") -> None:
    write_bytes_atomic(path, text.encode("utf-8"), hint=hint)
