"""What the emitted source looks like: only what the spec uses, a torchvision-like layout, header and
docstring, formatted and lint-clean, deterministic, and safe against hostile spec text."""

from __future__ import annotations

import ast
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, VENV_BIN

import resnet_gen as rg
from resnet_gen import __version__
from resnet_gen.emit import MARKER, EmitError, emit, spec_hash
from resnet_gen.emit.formatting import ruff_command
from resnet_gen.emit.source import emit_source
from resnet_gen.plan import layers as L

PROJECT_RULES = ["--select", "E,F,W,I,B,UP,SIM,RUF", "--ignore", "E501"]


def tree(name: str) -> ast.Module:
    return ast.parse(emit_source(rg.lower(rg.load_spec(name)), f"specs/{name}.yaml"))


def classes(module: ast.Module) -> dict[str, ast.ClassDef]:
    return {node.name: node for node in module.body if isinstance(node, ast.ClassDef)}


def keyword_uses(node: ast.AST, keyword: str) -> list[ast.Call]:
    return [
        call for call in ast.walk(node) if isinstance(call, ast.Call) and any(k.arg == keyword for k in call.keywords)
    ]


def names_in(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
    }


def test_resnet18_has_only_a_basic_block() -> None:
    module = tree("resnet18")
    # FeatureInfo: timm's feature_info accessors, which every model carries.
    assert set(classes(module)) == {"BasicBlock", "ResNet", "FeatureInfo"}
    text = ast.unparse(module)
    for absent in (
        "Bottleneck",
        "SqueezeExcite",
        "self.se",
        "groups",
        "dilation",
        "DropPath",
        "Dropout",
        "OrderedDict",
    ):
        assert absent not in text, absent
    init = next(
        n for n in classes(module)["BasicBlock"].body if isinstance(n, ast.FunctionDef) and n.name == "__init__"
    )
    assert [a.arg for a in init.args.args] == ["self", "in_channels", "out_channels", "stride"]


def test_model_reads_like_torchvision() -> None:
    module = tree("resnet152")
    model = classes(module)["ResNet"]
    methods = {n.name for n in model.body if isinstance(n, ast.FunctionDef)}
    assert {"__init__", "_make_stage", "forward_features", "forward_head", "forward", "_init_weights"} <= methods
    # One builder call per stage, no unrolled blocks: 50 blocks, one Bottleneck(...) call in the file.
    calls = [c for c in ast.walk(module) if isinstance(c, ast.Call) and ast.unparse(c.func) == "Bottleneck"]
    assert len(calls) == 1
    stage_calls = [c for c in ast.walk(model) if isinstance(c, ast.Call) and ast.unparse(c.func) == "self._make_stage"]
    assert [next(k.value.value for k in c.keywords if k.arg == "blocks") for c in stage_calls] == [3, 8, 36, 3]  # type: ignore[attr-defined]
    for function in ast.walk(module):
        if isinstance(function, ast.FunctionDef):
            assert function.returns is not None, function.name
            assert all(a.annotation is not None for a in function.args.args if a.arg != "self"), function.name


def test_resnext_has_groups_only_in_the_grouped_conv() -> None:
    module = tree("resnext50_32x4d")
    uses = keyword_uses(module, "groups")
    assert len(uses) == 1
    assert "groups=32" in ast.unparse(uses[0]) and "kernel_size=3" in ast.unparse(uses[0])
    assert not keyword_uses(tree("resnet50"), "groups")


def test_only_the_helpers_a_spec_uses() -> None:
    eca = classes(tree("ecaresnet26t"))
    assert "EfficientChannelAttention" in eca and "SqueezeExcite" not in eca
    se = classes(tree("seresnet50"))
    assert "SqueezeExcite" in se and "EfficientChannelAttention" not in se
    assert {"ZeroPadShortcut", "BasicBlock"} <= set(classes(tree("cifar_resnet20")))
    assert "BlurPool2d" in classes(tree("resnetblur50"))
    assert "PreActBottleneck" in classes(tree("resnetv2_50"))
    assert "StdConv2d" in classes(tree("resnetv2_50x1_bit"))


def test_header_and_docstring() -> None:
    spec = rg.load_spec("resnet50")
    text = emit_source(rg.lower(spec), "specs/resnet50.yaml", overrides=["head.num_classes=10"])
    lines = text.splitlines()
    assert lines[0].startswith(f"# {MARKER} {__version__}.") and "DO NOT EDIT" in lines[0]
    assert lines[1] == "# spec: resnet50, from 'specs/resnet50.yaml'"
    assert lines[2] == "# overrides: 'head.num_classes=10'"
    assert lines[3] == f"# spec sha256: {spec_hash(spec)}"
    doc = ast.get_docstring(ast.parse(text))
    assert doc is not None
    report = rg.analyze(spec)
    for part in (
        "resnet50",
        spec.description,
        f"{report.params:,} parameters",
        f"{report.macs / 1e9:.3f} GMACs",
        "3x224x224",
    ):
        assert part in " ".join(doc.split()), part
    assert "specs/resnet50.yaml" in doc
    for clock in ("2024", "2025", "2026", "time", "date"):
        assert clock not in "\n".join(lines[:4]).lower()


def test_hash_follows_the_resolved_spec() -> None:
    base = rg.load_spec("resnet50")
    assert spec_hash(base) == spec_hash(rg.load_spec(str(rg.catalog.catalog_path("resnet50"))))
    assert spec_hash(base) != spec_hash(rg.load_spec("resnet50", ["head.num_classes=10"]))


@pytest.mark.parametrize("name", ["resnet18", "seresnext26t_32x4d", "resnetv2_50d_evos", "test_resnet"])
def test_formatted_and_lint_clean(name: str) -> None:
    text = emit_source(rg.lower(rg.load_spec(name)), f"specs/{name}.yaml")
    for args in (["format", "--check"], ["check", *PROJECT_RULES]):
        done = subprocess.run([*ruff_command(*args), "-"], input=text.encode(), capture_output=True, check=False)
        assert done.returncode == 0, (args, done.stdout.decode(), done.stderr.decode())


def test_same_bytes_every_time_and_under_any_hash_seed() -> None:
    spec = rg.load_spec("seresnext26t_32x4d")
    first = emit(spec, "specs/seresnext26t_32x4d.yaml")
    assert emit(spec, "specs/seresnext26t_32x4d.yaml") == first
    for seed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        done = subprocess.run(
            [str(VENV_BIN / "resnet-gen"), "build", "seresnext26t_32x4d", "--stdout"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            check=True,
        )
        assert done.stdout.decode() == first


HOSTILE = [
    'x"""\nimport os\nos.system("echo owned")\n"""',
    "'''; import os; '''",
    'back\\slash \\" and \\n escapes \\',
    'quote at the end"',
    "ends in a backslash\\",
    "nul\x00 bell\x07 line\u2028sep",
]


@pytest.mark.parametrize("description", HOSTILE)
def test_hostile_description_stays_text(description: str) -> None:
    spec = rg.load_spec("resnet18").model_copy(update={"description": description})
    text = emit(spec, 'evil\n"""\nimport os #.yaml')
    module = ast.parse(text)
    doc = ast.get_docstring(module, clean=False)
    assert doc is not None and " ".join(description.split()) in " ".join(doc.split())
    # Nothing runs at import but imports, __all__, class and function definitions.
    for node in module.body[1:]:
        assert isinstance(node, (ast.Import, ast.ImportFrom, ast.ClassDef, ast.FunctionDef, ast.Assign)), ast.dump(node)
        if isinstance(node, ast.Import):
            assert {alias.name for alias in node.names} <= {"torch", "torch.nn.functional", "math"}
    assert "import os" not in [ast.unparse(node) for node in module.body]


@pytest.mark.parametrize("name", ["torch", "nn", "ResNet", "BasicBlock", "list", "__all__"])
def test_spec_names_that_would_shadow_are_refused(name: str) -> None:
    spec = rg.load_spec("resnet18").model_copy(update={"name": name})
    with pytest.raises(EmitError, match="name"):
        emit(spec)


def test_spec_names_must_be_identifiers(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("extends: resnet18\nname: 'x(); import os'\n")
    with pytest.raises(rg.SpecError, match="not a valid name"):
        rg.load_spec(str(path))


@dataclasses.dataclass(frozen=True)
class Mystery:
    path: str
    channels: int
    params = 0
    macs = 0


@dataclasses.dataclass(frozen=True)
class Conv(L.Conv):
    """A conv with a field no snippet knows (the name makes it dispatch to the Conv snippet)."""

    padding_mode: str = "reflect"


def _with_layer(change) -> rg.Plan:  # type: ignore[no-untyped-def]
    """The plan of resnet18 with its first block's branch changed by ``change`` (the emitter
    reads only the plan, so it sees the change)."""
    plan = rg.lower(rg.load_spec("resnet18"))
    stage = plan.stages[0]
    block = dataclasses.replace(stage.blocks[0], branch=change(stage.blocks[0].branch))
    stage = dataclasses.replace(stage, blocks=(block, *stage.blocks[1:]))
    return dataclasses.replace(plan, stages=(stage, *plan.stages[1:]))


def test_unknown_layer_kind_is_an_error() -> None:
    plan = _with_layer(lambda branch: (*branch, Mystery("mystery", 64)))
    with pytest.raises(EmitError, match=r"Mystery has no source template; add templates/layers/Mystery\.py\.j2"):
        emit(plan)


def test_unknown_field_is_an_error() -> None:
    def swap(branch):  # type: ignore[no-untyped-def]
        conv = branch[0]
        return (Conv(**{f.name: getattr(conv, f.name) for f in dataclasses.fields(conv)}), *branch[1:])

    plan = _with_layer(swap)
    with pytest.raises(EmitError, match=r"does not say how to write field.*padding_mode"):
        emit(plan)


def test_unknown_norm_type_is_an_error() -> None:
    def swap(branch):  # type: ignore[no-untyped-def]
        return tuple(
            dataclasses.replace(layer, type="layer") if isinstance(layer, L.Norm) else layer for layer in branch
        )

    plan = _with_layer(swap)
    with pytest.raises(EmitError, match="norm type 'layer' has no source template"):
        emit(plan)


def test_emit_is_exported_and_lazy() -> None:
    code = (
        "import sys, resnet_gen as rg\n"
        "text = rg.emit(rg.load_spec('resnet50'))\n"
        "assert text.startswith('# @generated'), text[:40]\n"
        "assert 'torch' not in sys.modules, 'emit imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_a_plan_field_the_templates_do_not_know_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from resnet_gen.emit import model
    from resnet_gen.plan import BlockPlan

    handled = dict(model.HANDLED_FIELDS)
    handled[BlockPlan] = handled[BlockPlan] - {"drop_path"}
    monkeypatch.setattr(model, "HANDLED_FIELDS", handled)
    with pytest.raises(EmitError, match=r"plan field.*drop_path of BlockPlan"):
        emit(rg.load_spec("resnet18"))
