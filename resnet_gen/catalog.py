"""Where the shipped specs and templates live (inside the package when installed from a wheel,
at the top of the source tree otherwise), and where a user's own specs live: never the catalog."""

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


# A user's own specs: ./specs of their project. In a checkout of this repository ./specs is the
# catalog itself, so the user's folder there is ./my_specs (gitignored) and the catalog stays clean.
USER_FOLDER = "specs"
CHECKOUT_USER_FOLDER = "my_specs"


def user_specs_dir(cwd: Path | None = None) -> Path:
    """The folder where the user's specs live (it may not exist yet), relative to ``cwd``."""
    base = Path(".") if cwd is None else cwd
    folder = base / USER_FOLDER
    if folder.is_dir() and folder.resolve() == specs_dir().resolve():
        return base / CHECKOUT_USER_FOLDER
    return folder


def user_spec_paths(cwd: Path | None = None) -> list[Path]:
    """The user's spec files, sorted; empty when their folder does not exist."""
    folder = user_specs_dir(cwd)
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.is_dir() else []


def catalog_paths() -> list[Path]:
    """Every shipped spec file, sorted by name."""
    return sorted(specs_dir().glob("*.yaml"))


def spec_label(source: str | Path) -> str:
    """How the header names a spec file, the same from any working folder: ``specs/<name>.yaml``
    for the catalog, else the path from the project's top folder (the nearest one holding
    ``.git`` or ``pyproject.toml``), else the file's name, with forward slashes."""
    from .spec.load import spec_path

    path = spec_path(source)
    resolved = path.resolve()
    specs = specs_dir().resolve()
    if resolved.is_relative_to(specs):
        return f"specs/{resolved.relative_to(specs).as_posix()}"
    for folder in resolved.parents:
        if (folder / ".git").exists() or (folder / "pyproject.toml").is_file():
            return resolved.relative_to(folder).as_posix()
    return resolved.name
