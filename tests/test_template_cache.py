"""The console script keeps jinja2's compiled templates in the tool's cache folder: a run that
finds them writes the same source without compiling a template, an edited template is compiled
again, a folder that cannot be used is no error, and the Python API keeps nothing."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import jinja2
import pytest
from conftest import ROOT, VENV_BIN, cli_env

import resnet_gen as rg
from resnet_gen import user_cache
from resnet_gen.emit import templates
from resnet_gen.emit.source import emit_source


def _fresh_environment() -> None:
    templates.snippet.cache_clear()
    templates.environment.cache_clear()


@pytest.fixture
def kept_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Compiled templates kept in tmp_path/cache, as the console script keeps them."""
    monkeypatch.setenv(user_cache.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(user_cache, "_templates_cached", True)
    _fresh_environment()
    yield tmp_path / "cache" / "templates"
    monkeypatch.undo()
    _fresh_environment()  # the other tests get an environment without the cache again


def test_a_second_run_loads_what_the_first_compiled(kept_in: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = rg.lower(rg.load_spec("resnet18"))
    first = emit_source(plan, "resnet18")
    kept = sorted(kept_in.iterdir())
    assert len(kept) >= 5 and all(path.name.startswith("__jinja2_") for path in kept)

    def no_compiling(*args: object, **kwargs: object) -> None:
        raise AssertionError("a template was compiled although its code was kept")

    _fresh_environment()
    monkeypatch.setattr(jinja2.Environment, "compile", no_compiling)
    assert emit_source(plan, "resnet18") == first
    assert sorted(kept_in.iterdir()) == kept


def test_the_same_source_with_and_without_the_cache(kept_in: Path) -> None:
    plan = rg.lower(rg.load_spec("resnest50d"))
    kept = emit_source(plan, "resnest50d")
    kept_again = emit_source(plan, "resnest50d")
    user_cache._templates_cached = False
    _fresh_environment()
    assert templates.environment().bytecode_cache is None
    assert emit_source(plan, "resnest50d") == kept == kept_again


def test_an_edited_template_is_compiled_again(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (tmp_path / "kept").mkdir()

    def rendered() -> str:
        loader = jinja2.FileSystemLoader(str(folder))
        env = jinja2.Environment(loader=loader, bytecode_cache=templates._CompiledTemplates(str(tmp_path / "kept")))
        return env.get_template("t.j2").render(x=1)

    (folder / "t.j2").write_text("first {{ x }}")
    assert rendered() == "first 1"
    (folder / "t.j2").write_text("second {{ x }}")
    assert rendered() == "second 1"


def test_a_folder_that_cannot_be_used_is_no_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cache").write_text("a file where the folder should be")
    monkeypatch.setenv(user_cache.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(user_cache, "_templates_cached", True)
    _fresh_environment()
    try:
        assert templates.environment().bytecode_cache is None
        assert "class ResNet" in emit_source(rg.lower(rg.load_spec("resnet18")), "resnet18")
    finally:
        monkeypatch.undo()
        _fresh_environment()


def test_the_python_api_keeps_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Until resnet_gen.cli.main runs in the process (a test may have run it before this one)."""
    monkeypatch.setenv(user_cache.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(user_cache, "_templates_cached", False)
    _fresh_environment()
    try:
        assert templates.environment().bytecode_cache is None
        emit_source(rg.lower(rg.load_spec("resnet18")), "resnet18")
        assert not (tmp_path / "cache").exists()
    finally:
        _fresh_environment()


@pytest.mark.parametrize("setting", ["folder", "off"])
def test_the_console_script_keeps_them_unless_turned_off(tmp_path: Path, setting: str) -> None:
    cache = tmp_path / "cache"
    env = {**cli_env(), user_cache.CACHE_ENV: str(cache) if setting == "folder" else "off"}
    outputs = []
    for run in ("first", "second"):
        done = subprocess.run(
            [str(VENV_BIN / "resnet-gen"), "build", str(ROOT / "specs" / "resnet18.yaml"), "-o", str(tmp_path / run)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        outputs.append((tmp_path / run / "resnet18.py").read_bytes())
    assert outputs[0] == outputs[1]
    if setting == "folder":
        assert len(list((cache / "templates").glob("__jinja2_*.cache"))) >= 5
    else:
        assert not cache.exists()
