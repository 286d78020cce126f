"""validate over a long list checks in worker processes: the same lines, in the same order, with
the same exit status as one process; the work really leaves this process; the record of passes
is whole afterwards; and a signal mid-run ends every worker with the parent."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import ALL_SPECS, ROOT, VENV_BIN, cli_env

from resnet_gen import user_cache
from resnet_gen.cli import validate_run
from resnet_gen.cli.validate_cache import ValidatedSpecs

CATALOG = [str(ROOT / "specs" / f"{name}.yaml") for name in ALL_SPECS]


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "resnet-gen"), "validate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env or cli_env(),
        check=False,
        timeout=300,
    )


def test_workers_print_what_one_process_prints(tmp_path: Path) -> None:
    """Good specs, broken ones (a bad value, a bad parent, a reference that does not hold) and
    catalog names, interleaved: every line and the status are the same with one and with two
    processes."""
    (tmp_path / "wide.yaml").write_text("extends: cifar_resnet20\nstages[0]: 1\n")
    (tmp_path / "lost.yaml").write_text("extends: no_such_parent\n")
    (tmp_path / "wrong.yaml").write_text("extends: resnet18\nreference: {source: a paper, params: 11000000}\n")
    (tmp_path / "zero.yaml").write_text("extends: resnet18\nstages: [{blocks: 0, width: 64}]\n")
    broken = ["wide.yaml", "lost.yaml", "wrong.yaml", "zero.yaml"]
    sources = [*CATALOG[:20], *broken, *CATALOG[20:60], "resnet50", *broken[:2], *CATALOG[60:]]
    one = _run(["-j", "1", "-v", *sources], tmp_path)
    two = _run(["-j", "2", "-v", *sources], tmp_path)
    assert one.returncode == two.returncode == 1
    assert (two.stdout, two.stderr) == (one.stdout, one.stderr)
    assert len(one.stderr.splitlines()) >= 6 and "wrong.yaml: reference:" in one.stderr
    # And a run that passes ends on its count, the same in both.
    good = _run(["-j", "2", *CATALOG], tmp_path)
    assert good.returncode == 0 and good.stdout == f"{len(CATALOG)} specs: {len(CATALOG)} valid\n"


def test_the_checks_run_in_other_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each outcome names the process that checked it: with three jobs, the first spec is checked
    here (it loads what the workers inherit), and the rest are dealt out in turn to this process
    and two forked workers."""
    real = validate_run.totals_of_resolved

    def tagged(mapping: Any, overrides: Any = None) -> Any:
        spec, params, macs = real(mapping, overrides)
        return spec.model_copy(update={"name": f"pid{os.getpid()}"}), params, macs

    monkeypatch.setattr(validate_run, "totals_of_resolved", tagged)
    sources = CATALOG[:48]
    outcomes = list(validate_run.check_sources(sources, (), ValidatedSpecs(None), jobs=3))
    assert [outcome.source for outcome in outcomes] == sources
    here = f"pid{os.getpid()}"
    assert outcomes[0].name == here
    rest = outcomes[1:]
    assert {outcome.name for outcome in rest[0::3]} == {here}
    first, second = {outcome.name for outcome in rest[1::3]}, {outcome.name for outcome in rest[2::3]}
    assert len(first) == len(second) == 1 and len({here, *first, *second}) == 3


def test_a_parallel_run_keeps_every_pass_on_record(tmp_path: Path) -> None:
    env = {**cli_env(), user_cache.CACHE_ENV: str(tmp_path / "cache")}
    first = _run(["-j", "2", *CATALOG], tmp_path, env)
    assert first.returncode == 0, first.stderr
    kept = ValidatedSpecs(tmp_path / "cache")
    outcomes = list(validate_run.check_sources(CATALOG, (), kept, jobs=1))
    # Every spec is found on record: none has a new entry to keep.
    assert [outcome.key for outcome in outcomes] == [""] * len(CATALOG)
    assert all(outcome.name and not outcome.problems for outcome in outcomes)


def test_how_many_processes() -> None:
    assert validate_run.default_jobs(1) == 1
    assert validate_run.default_jobs(validate_run.MIN_SPECS_PER_WORKER * 2 - 1) == 1
    cores = len(os.sched_getaffinity(0))
    assert validate_run.default_jobs(10_000) == cores
    assert validate_run.default_jobs(validate_run.MIN_SPECS_PER_WORKER * 2) == min(cores, 2)


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(child) for child in (task / "children").read_text().split())
    return found


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads child processes from /proc")
@pytest.mark.parametrize(
    ("signum", "status", "word"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_a_signal_while_workers_check_ends_them_all(signum: int, status: int, word: str) -> None:
    process = subprocess.Popen(
        [str(VENV_BIN / "resnet-gen"), "validate", "-j", "3", *CATALOG * 6],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    deadline = time.monotonic() + 60
    workers: set[int] = set()
    while len(workers) < 2:
        assert process.poll() is None and time.monotonic() < deadline, "the workers never started"
        workers = _children(process.pid)
        time.sleep(0.005)
    time.sleep(0.1)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert (process.returncode, err) == (status, f"{word}\n")
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(_alive(pid) for pid in workers)


def test_a_failure_in_a_worker_is_raised_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug met in a worker (not a bad spec, which is an outcome) ends the run here with the
    worker's exception, as it would in one process."""
    parent = os.getpid()
    real = validate_run.totals_of_resolved

    def broken_elsewhere(mapping: Any, overrides: Any = None) -> Any:
        if os.getpid() != parent:
            raise ValueError(f"broken in {mapping.data.get('name', 'a spec')}")
        return real(mapping, overrides)

    monkeypatch.setattr(validate_run, "totals_of_resolved", broken_elsewhere)
    with pytest.raises(ValueError, match="broken in"):
        list(validate_run.check_sources(CATALOG[:40], (), ValidatedSpecs(None), jobs=2))
