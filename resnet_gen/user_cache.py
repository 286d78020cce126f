"""Where the console script keeps what it can always compute again: the specs ``validate`` has
passed (:mod:`resnet_gen.cli.validate_cache`) and the compiled source templates
(:func:`template_folder`, read by :func:`resnet_gen.emit.templates.environment`).

The folder is ``$RESNET_GEN_CACHE`` (``off`` turns every cache off), else
``$XDG_CACHE_HOME/resnet-gen``, else ``~/.cache/resnet-gen``. Nothing in it changes what a
command writes: removing the folder only makes the next run slower. Only the console script
uses it (:func:`use_for_templates`); the Python API writes nothing outside the paths it is given.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "RESNET_GEN_CACHE"


def cache_folder() -> Path | None:
    """Where the caches live, or None when ``$RESNET_GEN_CACHE`` is ``off``."""
    setting = os.environ.get(CACHE_ENV, "")
    if setting.strip().lower() == "off":
        return None
    if setting:
        return Path(setting)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "resnet-gen"


_templates_cached = False


def use_for_templates() -> None:
    """Keep compiled templates in the cache folder for the rest of this process (the console
    script calls this: compiling the templates is about a sixth of a ``build``)."""
    global _templates_cached
    _templates_cached = True


def template_folder() -> Path | None:
    """Where compiled templates are kept, or None when they are compiled afresh."""
    folder = cache_folder() if _templates_cached else None
    return None if folder is None else folder / "templates"
