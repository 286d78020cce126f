"""The U-Nets' emitted source: a file that needs only torch and builds the live module (same
module tree, state_dict keys and outputs, bitwise), in the training and the inference form; a
spec name the file itself uses is refused."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest
import torch
from conftest import UNET_SPECS
from emit_support import import_source

from resnet_gen.emit.values import EmitError
from resnet_gen.errors import SpecError
from resnet_gen.unet import build_unet, load_unet_and_plan
from resnet_gen.unet.emit import HELPERS, emit_unet

# Every U-Net is compared by structure; the forward runs for the configurations in CASES (the
# live forward is held to diffusers in test_unet_diffusers.py).
VARIANTS = [
    [],
    ["unet.time_injection=scale_shift", "unet.attention_head_dim=16", "unet.dropout=0.1"],
    ["unet.downsample=avg", "unet.shortcut_kernel=3", "unet.activation=mish", "unet.mid_attention=false"],
]


def _emitted(name: str, overrides: list[str] | None = None, target: str = "training") -> torch.nn.Module:
    spec, _ = load_unet_and_plan(name, overrides or None)
    module = import_source(emit_unet(spec, target=target), f"emitted_{spec.name}_{target}_{len(overrides or [])}")
    factory = getattr(module, spec.name)
    model = factory()
    assert isinstance(model, torch.nn.Module)
    return model


def _same_tree(live: torch.nn.Module, emitted: torch.nn.Module) -> None:
    # The live ResBlocks are the classifiers' ResidualBlock, running the diffusion kind's plan.
    names = {"ResidualBlock": "ResBlock"}
    assert [(n, names.get(type(m).__name__, type(m).__name__)) for n, m in live.named_modules()] == [
        (n, type(m).__name__) for n, m in emitted.named_modules()
    ]
    live_state, emitted_state = live.state_dict(), emitted.state_dict()
    assert list(live_state) == list(emitted_state)
    assert all(live_state[key].shape == emitted_state[key].shape for key in live_state)


@pytest.mark.parametrize("name", UNET_SPECS)
def test_emitted_file_imports_only_torch_and_the_standard_library(name: str) -> None:
    spec, _ = load_unet_and_plan(name)
    tree = ast.parse(emit_unet(spec))
    roots = {
        (alias.name if isinstance(node, ast.Import) else node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert roots <= {"torch", "math", "collections"} | set(sys.stdlib_module_names)
    assert "torch" in roots and "resnet_gen" not in roots


@pytest.mark.parametrize("name", UNET_SPECS)
def test_emitted_structure_equals_live(name: str) -> None:
    _, plan = load_unet_and_plan(name)
    with torch.device("meta"):
        live = build_unet(plan)
        emitted = _emitted(name)
    _same_tree(live, emitted)


# The variants on the small config in float64; ddpm_cifar10 as shipped, one float32 sample.
CASES = [("unet_tiny", index, torch.float64, 2) for index in range(len(VARIANTS))] + [
    ("ddpm_cifar10", 0, torch.float32, 1)
]


@pytest.mark.parametrize(("name", "index", "dtype", "batch"), CASES)
def test_emitted_outputs_equal_live_bitwise(name: str, index: int, dtype: torch.dtype, batch: int) -> None:
    overrides = VARIANTS[index]
    _, plan = load_unet_and_plan(name, overrides or None)
    live = build_unet(plan).to(dtype).eval()
    emitted = _emitted(name, overrides).to(dtype).eval()
    _same_tree(live, emitted)
    emitted.load_state_dict(live.state_dict(), strict=True)
    x = torch.randn(batch, plan.in_channels, *plan.size, dtype=dtype)
    t = torch.tensor([5, 800][:batch])
    with torch.no_grad():
        assert torch.equal(live(x, t), emitted(x, t))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
@pytest.mark.parametrize("index", range(len(VARIANTS)))
def test_torchscript_compiles_live_and_emitted_unets_to_the_same_outputs(index: int) -> None:
    """As for the classifiers, ``torch.jit.script`` takes the live and the emitted U-Nets (both
    forms), and each scripted module gives its eager outputs for tensor, int and float timesteps."""
    overrides = VARIANTS[index]
    _, plan = load_unet_and_plan("unet_tiny", overrides or None)
    torch.manual_seed(0)
    live = build_unet(plan).double().eval()
    x = torch.randn(2, plan.in_channels, *plan.size, dtype=torch.float64)
    for model in (live, _emitted("unet_tiny", overrides), _emitted("unet_tiny", overrides, "inference")):
        model = model.double().eval()
        model.load_state_dict(live.state_dict(), strict=True)
        scripted = torch.jit.script(model)
        with torch.no_grad():
            for t in (torch.tensor([5, 800]), 17, 2.5):
                assert torch.equal(scripted(x, t), model(x, t)), (type(model).__module__, t)


def test_inference_form_is_eval_mode_without_gradients_and_loads_a_checkpoint() -> None:
    _, plan = load_unet_and_plan("unet_tiny")
    live = build_unet(plan).eval()
    spec, _ = load_unet_and_plan("unet_tiny")
    module = import_source(emit_unet(spec, target="inference"), "emitted_unet_tiny_inference_checkpoint")
    model = module.unet_tiny(checkpoint=live.state_dict())
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    x = torch.randn(1, 3, 16, 16)
    assert torch.equal(model(x, 3), live(x, 3).detach())


def test_int8_target_and_a_taken_name_are_refused() -> None:
    spec, _ = load_unet_and_plan("unet_tiny")
    with pytest.raises(EmitError, match="not written for U-Nets"):
        emit_unet(spec, target="int8")
    for taken in HELPERS:  # the file's own classes cannot name its factory
        with pytest.raises(SpecError, match="a name the generated file itself uses"):
            load_unet_and_plan("unet_tiny", [f"name={taken}"])


def test_emitted_file_runs_in_a_process_with_torch_alone(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Imported by path in a fresh interpreter: no resnet_gen on the path is needed."""
    spec, _ = load_unet_and_plan("unet_tiny")
    (tmp_path / "unet_tiny.py").write_text(emit_unet(spec), encoding="utf-8")
    code = (
        "import sys, torch; sys.modules.pop('resnet_gen', None);"
        "import builtins; real = builtins.__import__\n"
        "def guard(name, *a, **k):\n"
        "    assert not name.startswith('resnet_gen'), name\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = guard\n"
        "from unet_tiny import unet_tiny\n"
        "print(tuple(unet_tiny()(torch.randn(2, 3, 16, 16), 10).shape))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(2, 3, 16, 16)"


@pytest.mark.parametrize("index", range(len(VARIANTS)))
def test_the_emitted_resblock_is_its_steps_with_no_dead_option(index: int) -> None:
    """The file's ResBlock is the block template's class for the diffusion kind: its forward calls
    the layers in diffusers' order (``ResnetBlock2D.forward``, written out here), its constructor
    takes only the widths (the spec's groups, eps, dropout, activation, time width and shortcut
    kernel are written in), and its one condition is the projection where the channels change."""
    overrides = VARIANTS[index]
    spec, _ = load_unet_and_plan("unet_tiny", overrides or None)
    text = emit_unet(spec)
    tree = ast.parse(text)
    block = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "ResBlock")
    methods = {node.name: node for node in block.body if isinstance(node, ast.FunctionDef)}
    init, forward = methods["__init__"], methods["forward"]
    assert [arg.arg for arg in init.args.args] == ["self", "in_channels", "out_channels"]
    assert [arg.arg for arg in forward.args.args] == ["self", "x", "time"]
    tests = [ast.unparse(node.test) for node in ast.walk(init) if isinstance(node, ast.If | ast.IfExp)]
    assert tests == ["in_channels != out_channels"]
    tests = [ast.unparse(node.test) for node in ast.walk(forward) if isinstance(node, ast.If | ast.IfExp | ast.For)]
    assert tests == ["self.conv_shortcut is not None"]  # identity or projection
    called = [
        node.func.attr
        for statement in forward.body
        for node in ast.walk(statement)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr != "chunk"
    ]
    # diffusers: norm1, act, conv1, the time projection (act, linear), then "default" adds it
    # before norm2, "scale_shift" applies it after; act, dropout, conv2, the shortcut's conv.
    time = ["time_act", "time_emb_proj"]
    middle = [*time, "norm2"] if spec.unet.time_injection == "add" else ["norm2", *time]
    dropout = ["dropout"] if spec.unet.dropout else []
    assert called == ["norm1", "act1", "conv1", *middle, "act2", *dropout, "conv2", "conv_shortcut"]
    source = ast.get_source_segment(text, block) or ""
    activation = {"silu": "SiLU", "mish": "Mish"}[spec.unet.activation]
    assert source.count(f"nn.{activation}()") == 3 and "inplace" not in source
    kernel = spec.unet.shortcut_kernel
    assert f"nn.Conv2d(in_channels, out_channels, kernel_size={kernel}{', padding=1' if kernel == 3 else ''})" in source


def test_a_live_resblock_called_without_its_time_embedding_says_so() -> None:
    _, plan = load_unet_and_plan("unet_tiny")
    block = build_unet(plan).down_blocks[0].resnets[0]
    x = torch.randn(1, plan.first_width, *plan.size)
    with pytest.raises(AssertionError, match=r"reads a time embedding: call it as block\(x, time\)"):
        block(x)
