"""The README as a newcomer follows it: every shell and Python example runs, in order, in a scratch
copy of the repository, and prints what the README shows; afterwards nothing tracked has changed
(``git status`` is clean) and the catalog's own tests still pass in that copy.

What runs (README.md, "Contributing", says the same): each ``$ resnet-gen ...`` line of a console
block, whose following lines are its exact output; each ``resnet-gen ...`` line of a plain block
(exit status 0), except the ``--catalog`` ones, which ``make demo`` runs and the generated-file
tests check; each Python block; and each YAML block whose first line names a file, written there.
A block right after ``<!-- readme-test: skip (why) -->`` is left out.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT

SKIP = re.compile(r"<!-- readme-test: skip \((.+)\) -->")


@dataclass(frozen=True)
class Block:
    line: int  # where the fence opens, for messages
    lang: str
    text: str
    skipped: bool


def readme_blocks(text: str) -> list[Block]:
    blocks, lines = [], text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("```"):
            skipped = index > 0 and SKIP.fullmatch(lines[index - 1].strip()) is not None
            end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
            blocks.append(Block(index + 1, line[3:].strip(), "\n".join(lines[index + 1 : end]) + "\n", skipped))
            index = end
        index += 1
    return blocks


@dataclass(frozen=True)
class Step:
    where: str
    kind: str  # "shell", "python" or "file"
    text: str
    expected: str | None = None


def readme_steps(blocks: list[Block]) -> list[Step]:
    steps: list[Step] = []
    for block in blocks:
        where = f"README.md:{block.line}"
        if block.skipped:
            continue
        if block.lang == "python":
            steps.append(Step(where, "python", block.text))
        elif block.lang == "yaml":
            first = block.text.splitlines()[0]
            if re.fullmatch(r"# [\w./-]+\.yaml", first):
                steps.append(Step(where, "file", block.text, first[2:]))
        elif block.lang in ("", "console"):
            steps += _shell_steps(where, block)
    return steps


def _shell_steps(where: str, block: Block) -> list[Step]:
    steps: list[Step] = []
    command: str | None = None
    output: list[str] = []

    def close() -> None:
        if command is not None and "--catalog" not in command:
            expected = "".join(f"{line}\n" for line in output) if block.lang == "console" else None
            steps.append(Step(where, "shell", command, expected))

    for line in block.text.splitlines():
        if line.startswith(("$ resnet-gen ", "resnet-gen ")):
            close()
            command, output = line.removeprefix("$ "), []
        elif command is not None and block.lang == "console":
            output.append(line)
    close()
    return steps


def _copy_of_the_repository(target: Path) -> None:
    """The files git would check out (tracked and new, not ignored), as one commit."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    git = ["git", "-c", "user.name=readme", "-c", "user.email=readme@example.invalid", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], cwd=target, check=True)
    subprocess.run([*git, "add", "-A"], cwd=target, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "copy"], cwd=target, check=True)


def _environment(repo: Path, bin_dir: Path) -> dict[str, str]:
    """``resnet-gen`` and ``python`` of this venv, importing the package from the copy."""
    bin_dir.mkdir()
    shim = bin_dir / "resnet-gen"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m resnet_gen "$@"\n')
    shim.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(repo)
    env.pop("PYTEST_XDIST_WORKER", None)
    return env


@dataclass(frozen=True)
class Ran:
    step: Step
    code: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def followed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], list[Ran]]:
    base = tmp_path_factory.mktemp("readme")
    repo = base / "repo"
    repo.mkdir()
    _copy_of_the_repository(repo)
    env = _environment(repo, base / "bin")
    ran = []
    for step in readme_steps(readme_blocks((repo / "README.md").read_text())):
        if step.kind == "file":
            assert step.expected is not None
            (repo / step.expected).parent.mkdir(parents=True, exist_ok=True)
            (repo / step.expected).write_text(step.text)
            continue
        argv = (
            ["bash", "-o", "pipefail", "-c", step.text] if step.kind == "shell" else [sys.executable, "-c", step.text]
        )
        done = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=600)
        ran.append(Ran(step, done.returncode, done.stdout, done.stderr))
    return repo, env, ran


def test_the_examples_are_found() -> None:
    steps = readme_steps(readme_blocks((ROOT / "README.md").read_text()))
    commands = [step.text for step in steps if step.kind == "shell"]
    assert "resnet-gen new my_senet --from resnet50" in commands
    assert any(step.kind == "python" and "opt.step()" in step.text for step in steps)  # the training step
    assert any(step.kind == "file" and step.expected == "my_specs/my_senet.yaml" for step in steps)
    assert len(commands) >= 20


# A few minutes: a scratch copy, about 25 commands, torch imported by each Python example. One test
# follows the README and checks everything after it, so no two xdist workers ever both build it.
@pytest.mark.slow
def test_every_example_runs_and_then_nothing_tracked_has_changed(
    followed: tuple[Path, dict[str, str], list[Ran]],
) -> None:
    _assert_every_example_ran_and_printed_what_the_readme_shows(followed)
    _assert_nothing_tracked_changed_and_the_catalog_tests_still_pass(followed)


def _assert_every_example_ran_and_printed_what_the_readme_shows(
    followed: tuple[Path, dict[str, str], list[Ran]],
) -> None:
    repo, _, ran = followed
    import_check = subprocess.run(
        [sys.executable, "-c", "import resnet_gen; print(resnet_gen.__file__)"],
        cwd=repo,
        env=followed[1],
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(import_check.stdout.strip()).is_relative_to(repo)  # the copy's package, not this checkout's
    for result in ran:
        label = f"{result.step.where}: {result.step.text.splitlines()[0]}"
        assert result.code == 0, f"{label}\n{result.stderr}"
        if result.step.expected is not None and result.step.expected.strip():
            assert result.stdout == result.step.expected, label
    # The tutorial's outputs are where it says, and the training step ran.
    for name in ("my_specs/my_senet.yaml", "out/my_senet.py", "out/my_senet.svg", "out/diff.svg"):
        assert (repo / name).is_file(), name


def _assert_nothing_tracked_changed_and_the_catalog_tests_still_pass(
    followed: tuple[Path, dict[str, str], list[Ran]],
) -> None:
    repo, env, _ = followed
    status = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True)
    assert status.stdout == ""
    # The tests that a user's spec in the catalog folder used to fail: reference blocks, the README
    # table, generated files for every spec.
    suite = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/test_catalog_counts.py::test_reference_numbers_hold",
        "tests/test_catalog_table.py::test_readme_table_is_current",
        "tests/test_catalog_table.py::test_table_has_one_row_per_shipped_spec_with_its_numbers",
        "tests/test_emit_generated.py::test_no_source_without_a_spec",
        "tests/test_diagram_generated.py::test_no_svg_without_a_spec",
    ]
    done = subprocess.run(suite, cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout and "failed" not in done.stdout


def test_ci_and_the_readme_name_the_makefile_test_commands() -> None:
    """CI runs the README's test command, and the README quotes the quick loop's pytest options as
    the Makefile has them."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipes = dict(
        re.findall(
            r"^(test|test-quick):.*\n(?:#.*\n)*\t(?:\$\(TEST_ENV\) )?\$\(BIN\)/(pytest .+)$", makefile, re.MULTILINE
        )
    )
    assert set(recipes) == {"test", "test-quick"}
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1] == "make test"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(r"^make test +# ", readme, re.MULTILINE) and re.search(
        r"^make test-quick +# ", readme, re.MULTILINE
    )
    quoted = re.search(r"`make test-quick` \(`(pytest [^`]+)`", readme)
    assert quoted is not None, "the Contributing section quotes the quick loop's pytest command"
    assert set(quoted.group(1).split()) <= set(recipes["test-quick"].split())
    for option in ("-n 2", "--dist worksteal"):  # both loops share the workers' set-up
        assert all(option in recipe for recipe in recipes.values()), option
