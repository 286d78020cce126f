"""``resnet-gen diagram`` as a user runs it: formats, files, stdout, errors, a machine without ``dot``."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import ALL_SPECS, VENV_BIN, cli_env

import resnet_gen as rg
from resnet_gen import catalog
from resnet_gen.diagram import FORMATS, INSTALL_HINT, GraphvizNotFound, draw, render
from resnet_gen.diagram.output import dot_digest, svg_stamp

MAGIC = {"svg": b"<?xml", "png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF-", "dot": b"digraph resnet50 {"}


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([str(VENV_BIN / "resnet-gen"), *args], cwd=cwd, env=env or cli_env(), capture_output=True)


def without_dot(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH has the project's scripts but no Graphviz."""
    env = cli_env()
    env["PATH"] = str(VENV_BIN)
    assert shutil.which("dot", path=env["PATH"]) is None
    return env


@pytest.mark.parametrize("view", ["macro", "blocks"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_renders_and_repeats_byte_for_byte(fmt: str, view: str) -> None:
    spec = rg.load_spec("resnet50")
    first = draw(spec, view, fmt)
    assert first.startswith(MAGIC[fmt])
    assert draw(spec, view, fmt) == first
    if fmt == "png":
        width, height = struct.unpack(">II", first[16:24])
        assert 600 < width < 3000 and 600 < height < 4000
    if fmt == "svg":
        assert b"</svg>" in first and "resnet50" in first.decode()


def test_svg_carries_the_digest_of_its_dot() -> None:
    graph = rg.diagram(rg.load_spec("resnet18"))
    svg = render(graph, "svg")
    assert svg_stamp(svg) == dot_digest(graph.source)
    assert svg.count(b"<!-- resnet-gen diagram") == 1


def test_files_are_named_by_spec_view_and_format(tmp_path: Path) -> None:
    done = run(["diagram", "resnet18", "--view", "blocks", "--format", "png", "-o", "figs"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == "wrote figs/resnet18-blocks.png\n"
    assert (tmp_path / "figs/resnet18-blocks.png").read_bytes() == draw(rg.load_spec("resnet18"), "blocks", "png")
    done = run(["diagram", str(catalog.catalog_path("resnet34")), "-o", "figs"], tmp_path)
    assert done.returncode == 0 and (tmp_path / "figs/resnet34.svg").read_bytes().startswith(MAGIC["svg"])
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["resnet18-blocks.png", "resnet34.svg"]


def test_no_arguments_and_no_spec_folder_is_a_usage_error(tmp_path: Path) -> None:
    done = run(["diagram"], tmp_path)
    assert done.returncode == 2 and done.stdout == b""
    assert "no specs given and no spec files in specs/" in done.stderr.decode() and "--catalog" in done.stderr.decode()
    assert done.stderr.count(b"\n") == 1 and not any(tmp_path.iterdir())


def test_catalog_draws_every_shipped_spec_into_generated_with_one_summary_line(tmp_path: Path) -> None:
    done = run(["diagram", "--catalog", "--format", "dot"], tmp_path)
    assert done.returncode == 0, done.stderr
    written = sorted(path.name for path in (tmp_path / "generated").iterdir())
    assert written == sorted(f"{name}.dot" for name in ALL_SPECS)
    total = len(ALL_SPECS)
    assert done.stdout.decode() == f"{total} diagrams in generated/: {total} written, 0 up to date\n"
    (tmp_path / "generated" / f"{ALL_SPECS[0]}.dot").write_text("digraph stale {}\n")  # an older drawing
    again = run(["diagram", "--catalog", "--format", "dot"], tmp_path)
    assert again.stdout.decode() == f"{total} diagrams in generated/: 1 written, {total - 1} up to date\n"


def test_no_arguments_draws_the_users_specs_into_out(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    for name in ("alpha", "beta"):
        (tmp_path / "specs" / f"{name}.yaml").write_text("extends: resnet18\n")
    done = run(["diagram", "--format", "dot", "-v"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().splitlines() == [
        "wrote out/alpha.dot",
        "wrote out/beta.dot",
        "2 diagrams in out/: 2 written, 0 up to date",
    ]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out", "specs"]


def test_stdout_with_dot_format_needs_no_graphviz(tmp_path: Path) -> None:
    done = run(["diagram", "resnet50", "--format", "dot", "--stdout"], tmp_path, without_dot(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == render(rg.diagram(rg.load_spec("resnet50")), "dot")
    assert done.stderr == b"" and not any(tmp_path.iterdir())


@pytest.mark.parametrize("fmt", ["svg", "png", "pdf"])
def test_missing_dot_is_one_line_saying_how_to_install_it(tmp_path: Path, fmt: str) -> None:
    done = run(["diagram", "resnet50", "--format", fmt], tmp_path, without_dot(tmp_path))
    assert done.returncode == 1
    assert done.stdout == b""
    assert done.stderr.decode() == f"error: {INSTALL_HINT}\n"
    assert "apt-get install graphviz" in INSTALL_HINT
    assert not (tmp_path / "generated").exists()


def test_missing_dot_through_the_python_api(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    graph = rg.diagram(rg.load_spec("resnet18"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(GraphvizNotFound, match="apt-get install graphviz"):
        render(graph, "svg")
    assert render(graph, "dot").startswith(b"digraph resnet18")


def test_stdout_takes_exactly_one_spec(tmp_path: Path) -> None:
    done = run(["diagram", "resnet18", "resnet34", "--stdout"], tmp_path)
    assert done.returncode == 2
    assert done.stderr.decode().startswith("usage error: --stdout draws exactly one spec (got 2)")


def test_bad_spec_is_one_located_line_and_the_rest_still_draw(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("extends: resnet18\nstages:\n  - {blocks: 0, width: 64}\n")
    done = run(["diagram", "broken.yaml", "resnet18", "--format", "dot", "-o", "out"], tmp_path)
    assert done.returncode == 1
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: broken.yaml:3:") and "blocks" in lines[0]
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["resnet18.dot"]


def test_overrides_and_direction(tmp_path: Path) -> None:
    args = ["diagram", "resnet18", "--format", "dot", "--stdout", "--direction", "LR"]
    done = run([*args, "--set", "stages[0].blocks=5"], tmp_path)
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode()
    assert "rankdir=LR" in text and "layer1.0–4" in text and "×5" in text
    done = run(["diagram", "resnet18", "--direction", "XY"], tmp_path)
    assert done.returncode == 2
