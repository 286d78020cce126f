"""The ``resnet-gen`` console script.

It lives outside the package so that its signal handlers are in place before anything heavy is
imported (``import resnet_gen`` loads pydantic and the spec language): Ctrl-C, or SIGTERM, at any
moment, while importing included, ends the run with one line on stderr and exit status 130 (143
for SIGTERM). The handlers raise an exception, so the ``finally`` blocks that remove temporary
files and staging folders still run.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType, ModuleType

_STATUS = {signal.SIGINT: (130, "interrupted"), signal.SIGTERM: (143, "terminated")}


class Interrupted(BaseException):
    """A signal ended the run. A BaseException, so that no ``except Exception`` swallows it, and
    not a KeyboardInterrupt, which click would turn into an Abort with a blank line of its own."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.status, self.word = _STATUS.get(signal.Signals(signum), (128 + signum, "stopped"))


# The signals received, in order: the exception a handler raises can come back wrapped (pydantic
# reports one raised inside a serializer as its own error) or turned into another on the way up.
_received: list[int] = []


def _raise(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    raise Interrupted(signum)


def guarded(body: Callable[[], object]) -> None:
    """Run ``body`` with the handlers in place; a signal ends it with one line and its status,
    whatever the exception it raised became on its way out."""
    for signum in _STATUS:
        signal.signal(signum, _raise)
    try:
        body()
    except BaseException:
        if not _received:  # no signal came: the exception is the run's own
            raise
        for signum in _STATUS:  # a second Ctrl-C must not interrupt the goodbye
            signal.signal(signum, signal.SIG_IGN)
        stop = Interrupted(_received[0])
        sys.stderr.write(f"{stop.word}\n")
        sys.stderr.flush()
        sys.exit(stop.status)


def main() -> None:
    guarded(_run)


def _run() -> None:
    # A command allocates tens of thousands of small objects (parsed YAML, validated specs,
    # plans) and keeps most of them to the end: collecting young objects every 700 allocations
    # only rescans what lives on. Rarer collections still reclaim cycles in long commands (train).
    gc.set_threshold(50_000, 20, 20)
    # pydantic looks for plugins among every installed package's entry points when it builds the
    # first validator; the spec models are the tool's own, and no plugin is meant to watch them.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    if os.environ["PYDANTIC_DISABLE_PLUGINS"] in _ALL_PLUGINS_OFF:
        _defer_plugin_metadata()
    from resnet_gen.cli import main as run  # the heavy imports, now interruptible

    run()


# The values for which pydantic's get_plugins() returns at once, without reading entry points.
_ALL_PLUGINS_OFF = ("__all__", "1", "true")


def _defer_plugin_metadata() -> None:
    """Import pydantic's plugin loader against a stand-in ``importlib.metadata``.

    The loader imports ``importlib.metadata`` for the entry-point scan that the setting above
    turns off, and that module (the email package behind it) is a sixth of a command's start. The
    stand-in's ``entry_points`` imports the real module if it is ever called, and the stand-in
    leaves ``sys.modules`` at once, so every other import gets the real one. If the loader wants
    more than ``entry_points`` (another pydantic), it is imported again the plain way."""
    name = "importlib.metadata"
    if name in sys.modules or "pydantic.plugin._loader" in sys.modules:
        return

    def entry_points(**selection: object) -> object:
        import importlib

        return importlib.import_module(name).entry_points(**selection)

    stand_in = ModuleType(name)
    stand_in.entry_points = entry_points  # type: ignore[attr-defined]
    sys.modules[name] = stand_in
    try:
        import pydantic.plugin._loader  # noqa: F401
    except ImportError:
        sys.modules.pop("pydantic.plugin._loader", None)
    finally:
        if sys.modules.get(name) is stand_in:
            del sys.modules[name]


if __name__ == "__main__":
    main()
