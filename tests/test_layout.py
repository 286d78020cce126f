"""The package's layering, read from its source with ``ast`` (nothing is imported): the command
line sits on top, so nothing below it imports ``resnet_gen.cli`` (``python -m resnet_gen``,
``__main__.py``, is the command line's own entry point)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "resnet_gen"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved, at any depth of the file."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_the_import_reader_resolves_relative_imports() -> None:
    """The check below is only as good as this reader: ``from ..cli import x`` two levels down is
    ``resnet_gen.cli``."""
    found = imported_modules(PACKAGE / "emit" / "source.py")
    assert "resnet_gen.plan" in found and "resnet_gen.emit.templates" in found
    assert "resnet_gen.cli.app" in imported_modules(PACKAGE / "cli" / "build_command.py")


def test_nothing_outside_cli_imports_cli() -> None:
    offenders = sorted(
        f"{path.relative_to(PACKAGE.parent)} imports {module}"
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] not in ("cli", "__main__.py")
        for module in imported_modules(path)
        if module == "resnet_gen.cli" or module.startswith("resnet_gen.cli.")
    )
    assert offenders == []


# The back ends proper: each reads a Plan and nothing of the Spec it came from.
BACK_ENDS = [
    "live/build.py",
    "live/features.py",
    "live/interface.py",
    "live/freeze.py",
    "live/__init__.py",
    *(f"emit/{path.name}" for path in sorted((PACKAGE / "emit").glob("*.py")) if path.name != "__init__.py"),
    *(f"diagram/{path.name}" for path in sorted((PACKAGE / "diagram").glob("*.py")) if path.name != "__init__.py"),
]


def test_the_back_ends_import_nothing_of_the_spec() -> None:
    """``emit/__init__`` and ``diagram/__init__`` are front doors that take a spec too (through
    ``resnet_gen.compile``); everything behind them imports neither ``resnet_gen.spec`` nor the
    compiler."""
    offenders = sorted(
        f"{name} imports {module}"
        for name in BACK_ENDS
        for module in imported_modules(PACKAGE / name)
        if module.startswith(("resnet_gen.spec", "resnet_gen.compile"))
    )
    assert offenders == []


def test_live_emitted_and_drawn_from_a_plan_whose_spec_is_gone() -> None:
    """Each back end is given only a Plan: the Spec it was lowered from is deleted (a weak
    reference proves it is collected) and the results equal those made from the spec."""
    import gc
    import inspect
    import weakref

    import torch

    import resnet_gen as rg
    from resnet_gen.diagram import diagram
    from resnet_gen.diagram.blocks import blocks_view
    from resnet_gen.diagram.macro import macro_view
    from resnet_gen.emit.source import emit_source
    from resnet_gen.live import build

    for function in (emit_source, macro_view, blocks_view, build):
        first = next(iter(inspect.signature(function).parameters.values()))
        assert first.annotation in ("Plan", rg.Plan), function

    spec, plan = rg.compile_spec("cifar_resnet20", ["drop_path=0.1"])
    expected_source = rg.emit(spec, "specs/cifar_resnet20.yaml")
    expected_graph = rg.diagram(spec, "blocks").source
    torch.manual_seed(0)
    expected_model = rg.build(spec)
    gone = weakref.ref(spec)
    del spec
    gc.collect()
    assert gone() is None

    assert emit_source(plan, "specs/cifar_resnet20.yaml") == expected_source
    assert diagram(plan, "blocks").source == expected_graph
    torch.manual_seed(0)
    model = build(plan)
    assert str(model) == str(expected_model)
    state, reference = model.state_dict(), expected_model.state_dict()
    assert list(state) == list(reference)
    assert all(torch.equal(state[key], reference[key]) for key in state)


def test_the_front_end_validates_and_the_compiler_lowers() -> None:
    """``spec/load.py`` imports nothing of the planner and no module of ``spec/`` imports the
    lowering or the compiler (lowering is not validation's job; ``spec/limits.py`` names the Plan
    type only to check a plan's size); the compiler returns the spec and exactly the plan the
    planner makes of it."""
    offenders = sorted(
        f"{path.relative_to(PACKAGE.parent)} imports {module}"
        for path in sorted((PACKAGE / "spec").glob("*.py"))
        for module in imported_modules(path)
        if module.startswith(("resnet_gen.plan.lower", "resnet_gen.compile"))
        or (path.name == "load.py" and module.startswith("resnet_gen.plan"))
    )
    assert offenders == []

    import resnet_gen as rg
    from resnet_gen.spec import resolve, validate

    spec, plan = rg.compile_spec("resnet26d", ["head.num_classes=7"])
    assert spec == rg.load_spec("resnet26d", {"head.num_classes": 7})
    assert plan == rg.lower(spec) and plan.head is not None and plan.head.num_classes == 7
    # Validation alone accepts a spec the planner refuses; compiling it is the located error
    # validate prints (tests/bad_specs has the case).
    from resnet_gen.compile import compile_mapping

    corpus = Path(__file__).resolve().parent / "bad_specs"
    mapping = resolve(corpus / "combo_blur_pool_too_small.yaml")
    assert validate(mapping.copy()).input.size == 4
    expected = (corpus / "combo_blur_pool_too_small.expected").read_text(encoding="utf-8").strip()
    with pytest.raises(rg.SpecError) as raised:
        compile_mapping(mapping)
    assert str(raised.value).endswith(expected.partition(": ")[2])
