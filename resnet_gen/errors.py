"""The one exception type the package raises for bad input."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where a problem is: a file (or ``--set``), and a 1-based line and column when known."""

    source: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.source
        if self.column is None:
            return f"{self.source}:{self.line}"
        return f"{self.source}:{self.line}:{self.column}"


class SpecError(ValueError):
    """A spec, override or option is invalid.

    ``str(error)`` is one line per problem, each ``file:line:col: key.path: message``.
    ``error.problems`` holds the same lines as a tuple.
    """

    def __init__(self, problems: str | list[str] | tuple[str, ...]) -> None:
        items = (problems,) if isinstance(problems, str) else tuple(problems)
        self.problems: tuple[str, ...] = tuple(_one_line(problem) for problem in items)
        super().__init__("\n".join(self.problems))


def _one_line(text: str) -> str:
    """Control characters (a newline in a file name or a value) escaped, so a problem stays one line."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def located(location: Location | None, key_path: str, message: str) -> str:
    """Format one problem as ``where: key.path: message``."""
    parts = [str(location)] if location is not None else []
    if key_path:
        parts.append(key_path)
    parts.append(message)
    return ": ".join(parts)
