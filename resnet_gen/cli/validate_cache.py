"""What ``resnet-gen validate`` remembers between runs: the specs it passed, so that a run over
files that have not changed skips checking and lowering them again (as mypy and ruff keep a cache).

An entry is keyed by the spec as resolved (the merged mapping of the file and every parent it
extends, so a change in any of them, or in which file a name finds, is a new key) and by the
checking code itself (the package's files, by path, size and modification time, and the versions
of Python, pydantic and PyYAML). Only passes are kept, and only without ``--set``: a failure is
always checked afresh, so its message is always today's. The cache is best-effort: a file that
cannot be read is ignored, one that cannot be written is not written, and neither is an error.

It lives in the tool's cache folder (:func:`resnet_gen.user_cache.cache_folder`: ``$RESNET_GEN_CACHE``,
``off`` to turn it off, else ``$XDG_CACHE_HOME/resnet-gen`` or ``~/.cache/resnet-gen``);
``validate --no-cache`` skips it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FILE_NAME = "validated.json"
FORMAT = 1
MAX_ENTRIES = 5_000  # the oldest go first; a catalog is a few hundred


@functools.cache
def code_fingerprint() -> str:
    """The checking code: every module of the package (path, size, modification time) and the
    versions of the interpreter and the libraries that parse and validate."""
    import pydantic
    import yaml

    digest = hashlib.sha256(f"{FORMAT}\n{sys.version}\n{pydantic.VERSION}\n{yaml.__version__}\n".encode())
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*.py")):
        status = path.stat()
        digest.update(f"{path.relative_to(package).as_posix()} {status.st_size} {status.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def spec_key(resolved: Mapping[str, Any]) -> str:
    """The key of a resolved spec (its merged mapping) under today's checking code."""
    text = json.dumps(resolved, sort_keys=True, ensure_ascii=False, default=repr)
    return hashlib.sha256(f"{code_fingerprint()}\n{text}".encode()).hexdigest()


class ValidatedSpecs:
    """The passes on record: key -> (name, params, MACs)."""

    def __init__(self, folder: Path | None) -> None:
        self._file = folder / FILE_NAME if folder is not None else None
        self._entries: dict[str, tuple[str, int, int]] = {}
        self._changed = False
        if self._file is not None:
            self._entries = _read(self._file)

    @property
    def kept(self) -> bool:
        """Whether this run keeps a record (a folder, and neither --no-cache nor --set)."""
        return self._file is not None

    def get(self, key: str) -> tuple[str, int, int] | None:
        return self._entries.get(key)

    def put(self, key: str, name: str, params: int, macs: int) -> None:
        if self._file is None or self._entries.get(key) == (name, params, macs):
            return
        self._entries.pop(key, None)
        self._entries[key] = (name, params, macs)
        self._changed = True

    def save(self) -> None:
        """Write the record if it changed, through a temporary file and a rename (two runs at once
        each leave a whole file); nothing is said when the folder cannot be written."""
        if self._file is None or not self._changed:
            return
        entries = list(self._entries.items())[-MAX_ENTRIES:]
        data = json.dumps({"format": FORMAT, "entries": {key: list(value) for key, value in entries}})
        import tempfile  # here: a run that keeps nothing new does not load it

        temp = None
        try:
            self._file.parent.mkdir(parents=True, exist_ok=True)
            handle, temp = tempfile.mkstemp(prefix=f".{FILE_NAME}.", suffix=".tmp", dir=self._file.parent)
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(data)
            os.replace(temp, self._file)
        except OSError:
            if temp is not None:
                Path(temp).unlink(missing_ok=True)


def _read(path: Path) -> dict[str, tuple[str, int, int]]:
    """The entries of a cache file; none when it is missing, unreadable or of another format."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("entries"), dict):
        return {}
    entries: dict[str, tuple[str, int, int]] = {}
    for key, value in data["entries"].items():
        if (
            isinstance(value, list)
            and len(value) == 3
            and isinstance(value[0], str)
            and all(isinstance(item, int) and not isinstance(item, bool) for item in value[1:])
        ):
            entries[key] = (value[0], value[1], value[2])
    return entries
