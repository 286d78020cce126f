"""The package's layering, read from its source with ``ast`` (nothing is imported): the command
line sits on top, so nothing below it imports ``resnet_gen.cli`` (``python -m resnet_gen``,
``__main__.py``, is the command line's own entry point)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "resnet_gen"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved, at any depth of the file."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_the_import_reader_resolves_relative_imports() -> None:
    """The check below is only as good as this reader: ``from ..cli import x`` two levels down is
    ``resnet_gen.cli``."""
    found = imported_modules(PACKAGE / "emit" / "source.py")
    assert "resnet_gen.plan" in found and "resnet_gen.emit.templates" in found
    assert "resnet_gen.cli.app" in imported_modules(PACKAGE / "cli" / "build_command.py")


def test_nothing_outside_cli_imports_cli() -> None:
    offenders = sorted(
        f"{path.relative_to(PACKAGE.parent)} imports {module}"
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] not in ("cli", "__main__.py")
        for module in imported_modules(path)
        if module == "resnet_gen.cli" or module.startswith("resnet_gen.cli.")
    )
    assert offenders == []
