"""Values in emitted code: expressions, Python literals, checked names and docstring text.

Nothing from a spec reaches the source except through these functions: names are checked
identifiers, strings are written with ``repr`` (or escaped for a docstring), numbers as literals.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass

from ..errors import SpecError
from ..identifiers import identifier_kind


class EmitError(SpecError):
    """A plan the source back end cannot write correctly (it never writes a guess)."""


@dataclass(frozen=True, eq=False)
class Expr:
    """A piece of code and the value it has for the network being emitted.

    ``literal`` expressions are constants; the others name a constructor argument whose value
    differs between the blocks that share the code. Templates render ``str(expr)`` and may
    compare a literal with a plain value (``layer.type == "batch"``).
    """

    code: str
    value: object
    literal: bool

    def __str__(self) -> str:
        return self.code

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Expr):
            return self.code == other.code
        return self.literal and type(self.value) is type(other) and self.value == other

    def __hash__(self) -> int:
        return hash(self.code)


def literal(value: object) -> Expr:
    return Expr(py_literal(value), value, True)


def py_literal(value: object) -> str:
    """``value`` as Python source: repr for strings, exact round-trip for floats."""
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f"float({str(value)!r})"
    if isinstance(value, tuple):
        items = [py_literal(item) for item in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if isinstance(value, list):
        return f"[{', '.join(py_literal(item) for item in value)}]"
    raise EmitError(f"cannot write {type(value).__name__} value {value!r} as a Python literal")


def check_identifier(name: str, what: str) -> str:
    """``name`` if it is a plain ASCII identifier that shadows no builtin, else EmitError."""
    kind = identifier_kind(name)
    if kind in ("invalid", "keyword"):
        raise EmitError(f"{what} {name!r} is not a valid Python identifier")
    if kind == "builtin":
        raise EmitError(f"{what} {name!r} would shadow the Python builtin of that name; rename it")
    return name


def docstring_text(text: str) -> str:
    """``text`` made safe inside a triple-double-quoted docstring: backslashes and double quotes
    escaped, every non-printable character written as its ``repr`` escape."""
    out = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char.isprintable() or char == "\n":
            out.append(char)
        else:
            out.append(repr(char)[1:-1])
    return "".join(out)


def comment_text(text: str) -> str:
    """``text`` for a ``#`` comment: one line, non-printable characters escaped."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


DOC_WIDTH = 92


def paragraphs(*texts: str) -> str:
    """Docstring text: each paragraph wrapped to DOC_WIDTH columns, then escaped."""
    wrapped = [textwrap.fill(text, DOC_WIDTH, break_long_words=False, break_on_hyphens=False) for text in texts if text]
    return docstring_text("\n\n".join(wrapped))
