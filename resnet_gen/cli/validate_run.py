"""How ``resnet-gen validate`` checks its specs: one at a time, or spread over the machine's cores
for a long list (a catalog of a few hundred specs is checked in well under a second).

Each spec's check is independent of the others, so a long list is shared between this process
and worker processes forked from it once the package is imported (a worker starts in
milliseconds and imports nothing again). Results come back in the order given, so the output is
the same whatever the number of processes; the record of passes is read by the workers and
written by this process only. Where ``fork`` is not available (Windows) or one core is, the specs
are checked here.
"""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from typing import BinaryIO

from ..errors import SpecError
from ..layout_dispatch import totals_of_resolved
from ..reference_check import reference_mismatches
from ..spec.load import ParentCache, resolve
from .sources import with_identity
from .validate_cache import ValidatedSpecs, spec_key

# Below this many specs a second process saves less than it costs to start.
MIN_SPECS_PER_WORKER = 16


@dataclass(frozen=True)
class Checked:
    """One spec's outcome: its problems (one located line each), or its name and numbers. ``key``
    is the record entry to keep for a new pass ("" when there is nothing new to keep)."""

    source: str
    problems: tuple[str, ...] = ()
    name: str = ""
    params: int = 0
    macs: int = 0
    key: str = ""


class _Checker:
    """Checks specs one by one against the record of passes, reusing parsed parents."""

    def __init__(self, overrides: tuple[str, ...], passed: ValidatedSpecs) -> None:
        self.overrides = overrides
        self.passed = passed
        self.parents = ParentCache()

    def __call__(self, source: str) -> Checked:
        try:
            mapping = resolve(source, parents=self.parents)
            key = spec_key(mapping.data) if self.passed.kept else ""
            known = self.passed.get(key) if key else None
            if known is not None:
                return Checked(source, name=known[0], params=known[1], macs=known[2])
            spec, params, macs = totals_of_resolved(mapping, with_identity(source, self.overrides))
        except SpecError as exc:
            return Checked(source, problems=tuple(exc.problems))
        mismatches = [] if self.overrides else reference_mismatches(spec.reference, params, macs)
        if mismatches:
            return Checked(
                source,
                problems=(
                    f"{source}: reference: the network has {params:,} params and {macs / 1e9:.3f} GMACs,"
                    f" which differ in {', '.join(mismatches)}; fix the spec or its reference block",
                ),
            )
        return Checked(source, name=spec.name, params=params, macs=macs, key=key)


def default_jobs(count: int) -> int:
    """Processes for ``count`` specs: one per usable core, none more than the list keeps busy."""
    if not hasattr(os, "fork"):
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, count // MIN_SPECS_PER_WORKER))


def _start_worker() -> None:
    # This process answers Ctrl-C and ends the workers; a worker's part is to stop without a word.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@dataclass
class _Worker:
    """A forked process checking its share of the specs, its outcomes streamed back in order."""

    pid: int
    outcomes: BinaryIO

    def next(self) -> Checked:
        try:
            kind, value = pickle.load(self.outcomes)
        except EOFError:
            raise RuntimeError(f"validate: worker process {self.pid} stopped before its last spec") from None
        if kind == "raised":
            raise value
        checked: Checked = value
        return checked


def _fork(checker: _Checker, share: list[str]) -> _Worker:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_end)
        return _Worker(pid, os.fdopen(read_end, "rb"))
    os.close(read_end)  # the worker, from here to os._exit: nothing of the parent's runs on
    _start_worker()
    status = 0
    try:
        with os.fdopen(write_end, "wb") as out:
            for source in share:
                try:
                    outcome: tuple[str, object] = ("checked", checker(source))
                except Exception as exc:  # a bug, not a bad spec: the parent raises it
                    outcome = ("raised", exc)
                pickle.dump(outcome, out)
                out.flush()
                if outcome[0] == "raised":
                    break
    except BaseException:
        status = 1
    finally:
        os._exit(status)  # neither the parent's exit handlers nor its buffered output


def check_sources(
    sources: list[str], overrides: tuple[str, ...], passed: ValidatedSpecs, *, jobs: int
) -> Iterator[Checked]:
    """Each source's outcome, in the order given, checked in ``jobs`` processes."""
    checker = _Checker(overrides, passed)
    if jobs <= 1 or len(sources) < 2:
        yield from map(checker, sources)
        return
    # The first check here loads what every check needs once (the block kinds, the helpers'
    # names, the validators' tables), so the workers are forked with it in place.
    yield checker(sources[0])
    rest = sources[1:]
    # The specs are dealt out in turn, so that the deep nets (neighbours in a sorted catalog) are
    # shared out too; this process checks every jobs-th itself. A worker is a bare fork with a
    # pipe, not a pool: a pool's threads would take this process's time to hand results over.
    workers = [_fork(checker, rest[turn::jobs]) for turn in range(1, jobs)]
    try:
        for index, source in enumerate(rest):
            turn = index % jobs
            yield workers[turn - 1].next() if turn else checker(source)
    finally:
        for worker in workers:
            worker.outcomes.close()
            with suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGTERM)  # done already, or no longer wanted
            os.waitpid(worker.pid, 0)
