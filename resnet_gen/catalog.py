"""Where the shipped specs and templates live: inside the package when installed from a wheel,
at the top of the source tree otherwise."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    bundled = _PACKAGE / "_data" / name
    return bundled if bundled.is_dir() else _PACKAGE.parent / name


def specs_dir() -> Path:
    """The folder of shipped specs (the catalog)."""
    return _data_dir("specs")


def templates_dir() -> Path:
    """The folder of jinja2 templates for emitted source."""
    return _data_dir("templates")


def catalog_names() -> list[str]:
    """Names of every shipped spec, sorted."""
    return sorted(path.stem for path in specs_dir().glob("*.yaml"))


def catalog_path(name: str) -> Path:
    return specs_dir() / f"{name}.yaml"
