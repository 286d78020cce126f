"""validate's record of passes: a second run over unchanged specs skips checking them and prints
the same, and any change the check could see (the file, a parent, the code, --set) checks again;
failures are never recorded; a cache that cannot be read or written changes nothing but speed."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import VENV_BIN, cli_env

from resnet_gen.cli import main, validate_cache, validate_run


def _validate(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(["validate", *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user folder with a spec and its parent, and a cache folder of the test's own."""
    monkeypatch.setenv("RESNET_GEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "base.yaml").write_text("extends: cifar_resnet20\ndescription: Base.\n")
    (tmp_path / "specs" / "mine.yaml").write_text("extends: base\ndescription: Mine.\n")
    return tmp_path


class Counted:
    """totals_of_resolved, counting the specs it checks."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.checked: list[str] = []
        real = validate_run.totals_of_resolved

        def counted(mapping: Any, overrides: Any = None) -> Any:
            self.checked.append(mapping.data["name"])
            return real(mapping, overrides)

        monkeypatch.setattr(validate_run, "totals_of_resolved", counted)


def test_a_second_run_skips_unchanged_specs_and_prints_the_same(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    counted = Counted(monkeypatch)
    first = _validate(["-v"], capsys)
    assert first[0] == 0 and sorted(counted.checked) == ["base", "mine"]
    assert (project / "cache" / validate_cache.FILE_NAME).is_file()
    counted.checked.clear()
    assert _validate(["-v"], capsys) == first and counted.checked == []
    line = f"ok  {'mine':<28} {269_722:>13,} params  {0.041:8.3f} GMACs\n"  # cifar_resnet20's count
    assert _validate(["specs/mine.yaml"], capsys)[1] == line
    assert counted.checked == []


def test_a_change_the_check_could_see_checks_again(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _validate([], capsys)
    counted = Counted(monkeypatch)
    # The parent changes: both specs resolve to new mappings.
    (project / "specs" / "base.yaml").write_text("extends: cifar_resnet20\ndescription: Base.\nactivation: gelu\n")
    assert _validate([], capsys)[0] == 0 and sorted(counted.checked) == ["base", "mine"]
    counted.checked.clear()
    # --set checks afresh and records nothing.
    before = (project / "cache" / validate_cache.FILE_NAME).read_bytes()
    assert _validate(["specs/mine.yaml", "--set", "stages[0].blocks=2"], capsys)[0] == 0
    assert counted.checked == ["mine"]  # resolved as written; --set names it mine_custom after
    assert (project / "cache" / validate_cache.FILE_NAME).read_bytes() == before
    counted.checked.clear()
    # So does --no-cache.
    assert _validate(["--no-cache"], capsys)[0] == 0 and sorted(counted.checked) == ["base", "mine"]
    counted.checked.clear()
    # The checking code changes (a new resnet-gen, or an edited module of the package).
    monkeypatch.setattr(validate_cache, "code_fingerprint", lambda: "another version")
    assert _validate([], capsys)[0] == 0 and sorted(counted.checked) == ["base", "mine"]


def test_a_failure_is_never_recorded(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "specs" / "mine.yaml").write_text("extends: base\nstages:\n  - {blocks: 0, width: 16}\n")
    for _ in range(2):
        code, out, err = _validate(["specs/mine.yaml"], capsys)
        assert code == 1 and out == "" and "specs/mine.yaml:3:" in err and "blocks" in err
    # A wrong reference block: the network checks, its numbers do not.
    (project / "specs" / "mine.yaml").write_text("extends: base\nreference: {source: x, params: 5}\n")
    for _ in range(2):
        code, _, err = _validate(["specs/mine.yaml"], capsys)
        assert code == 1 and "reference: the network has 269,722 params" in err
    assert not (project / "cache").exists()  # nothing passed, nothing written


def test_an_unreadable_or_unwritable_cache_changes_nothing_but_speed(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _validate([], capsys)
    assert expected[0] == 0
    (project / "cache" / validate_cache.FILE_NAME).write_text("{not json")
    assert _validate([], capsys) == expected
    assert json.loads((project / "cache" / validate_cache.FILE_NAME).read_text())["format"] == 1
    blocked = project / "blocked"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("RESNET_GEN_CACHE", str(blocked))
    assert _validate([], capsys) == expected
    assert blocked.read_text() == "a file where the cache folder would be"
    monkeypatch.setenv("RESNET_GEN_CACHE", "off")
    assert _validate([], capsys) == expected
    assert not [name for name in os.listdir(project) if name not in ("specs", "cache", "blocked")]


def test_the_console_script_uses_the_xdg_cache_folder(tmp_path: Path) -> None:
    """Unset, the cache lives under $XDG_CACHE_HOME; two processes agree on the record."""
    env = {key: value for key, value in cli_env().items() if key != "RESNET_GEN_CACHE"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    runs = [
        subprocess.run(
            [str(VENV_BIN / "resnet-gen"), "validate", "resnet18", "cifar_resnet20"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        for _ in range(2)
    ]
    assert [run.returncode for run in runs] == [0, 0] and runs[0].stdout == runs[1].stdout == "2 specs: 2 valid\n"
    record = json.loads((tmp_path / "xdg" / "resnet-gen" / validate_cache.FILE_NAME).read_text())
    assert sorted(name for name, _, _ in record["entries"].values()) == ["cifar_resnet20", "resnet18"]
