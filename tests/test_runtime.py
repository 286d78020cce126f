"""One source for the helper modules: the live back end builds from ``resnet_gen.runtime`` and every
emitted file copies the runtime's classes word for word, so the two back ends cannot drift."""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import ALL_SPECS, ROOT
from torch import nn

import resnet_gen as rg
from resnet_gen import runtime
from resnet_gen.emit import EmitError, emit, helpers
from resnet_gen.runtime import helper_modules

RUNTIME = ROOT / "resnet_gen" / "runtime"


def runtime_classes() -> dict[str, type]:
    """Every class the runtime's modules define, imported (with torch), by name."""
    found: dict[str, type] = {}
    for path in sorted(RUNTIME.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        dotted = ".".join(path.relative_to(RUNTIME).with_suffix("").parts)
        module = importlib.import_module(f"resnet_gen.runtime.{dotted}")
        for name, value in vars(module).items():
            if inspect.isclass(value) and value.__module__ == module.__name__:
                found[name] = value
    return found


def emitted_classes(text: str) -> dict[str, str]:
    """The top-level classes of an emitted file, as written there."""
    module = ast.parse(text)
    return {
        node.name: ast.get_source_segment(text, node) or "" for node in module.body if isinstance(node, ast.ClassDef)
    }


def test_the_table_read_from_the_files_names_every_runtime_class_and_its_module() -> None:
    """The table the emitter reads without importing torch is what importing the modules finds,
    in a fixed order, and reading it imports no torch."""
    classes = runtime_classes()
    expected = {name: cls.__module__.removeprefix("resnet_gen.runtime.") for name, cls in classes.items()}
    assert helper_modules() == expected
    assert list(helper_modules()) == sorted(expected)
    assert helper_modules()["SplitAttention"] == "split_attention"


def test_the_table_imports_no_torch() -> None:
    code = (
        "import sys; from resnet_gen.runtime import helper_modules; assert helper_modules();"
        " assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_a_class_in_two_runtime_modules_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("one", "two"):
        (tmp_path / f"{module}.py").write_text("class Twice:\n    pass\n", encoding="utf-8")
    monkeypatch.setattr(runtime, "RUNTIME_DIR", tmp_path)
    runtime.helper_modules.cache_clear()
    try:
        with pytest.raises(ValueError, match="Twice is defined in both one and two"):
            runtime.helper_modules()
    finally:
        runtime.helper_modules.cache_clear()


# Variants that use the helpers no catalog net does (frozen norms, drop path, timm's stride-1
# average pool of a dilated avg-down shortcut, a tied stage with stochastic depth).
VARIANTS = {
    "cifar_resnet20": ["norm.type=frozen_batch", "drop_path=0.1"],
    "cifar_resnet56_tied": ["drop_path=0.1"],
    "resnet26d": ["backbone.output_stride=16"],
}


def test_every_emitted_helper_is_the_runtime_class_word_for_word() -> None:
    """Read with inspect from the imported runtime (not by the emitter's own reader), each helper
    class in every committed generated file, and in the variants above, is the runtime's text;
    together they use every helper."""
    sources = {name: textwrap.dedent(inspect.getsource(cls)) for name, cls in runtime_classes().items()}
    files = sorted((ROOT / "generated").glob("*.py")) + sorted((ROOT / "generated" / "inference").glob("*.py"))
    assert len(files) >= 2 * len(ALL_SPECS)
    texts = {str(path.relative_to(ROOT)): path.read_text(encoding="utf-8") for path in files}
    texts |= {f"{name} {' '.join(sets)}": emit(rg.load_spec(name, sets)) for name, sets in VARIANTS.items()}
    seen: set[str] = set()
    for where, text in texts.items():
        for name, written in emitted_classes(text).items():
            if name in sources:
                assert written + "\n" == sources[name], f"{where}: {name} is not the runtime's class"
                seen.add(name)
    assert seen == set(sources)


def test_the_live_network_is_built_from_the_runtime_classes() -> None:
    """A net that uses many helpers: each helper module in it is the runtime's class, and the
    emitted file defines the same helper names and no other."""
    spec = rg.load_spec("cifar_resnet20", ["block.attention=se", "drop_path=0.1", "norm.type=frozen_batch"])
    model = rg.build(spec)
    classes = runtime_classes()
    used = {type(module) for module in model.modules() if type(module).__name__ in classes}
    assert {cls.__name__ for cls in used} >= {"SqueezeExcite", "DropPath", "FrozenBatchNorm2d"}
    assert all(cls is classes[cls.__name__] for cls in used)
    written = set(emitted_classes(emit(spec))) & set(classes)
    assert written == {cls.__name__ for cls in used} | {"FeatureInfo"}


def test_the_live_unet_is_built_from_the_runtime_classes() -> None:
    """The diffusion U-Net's modules are runtime helpers too: every module of the live network
    that is not torch's is the runtime's class, but its ResBlocks, the diffusion block kind's, which
    are the live back end's ResidualBlock as every kind's blocks are, and the emitted file's
    ResBlock, written by the block template (tests/test_unet_emit.py holds the two equal); the
    emitted file defines those classes and no other."""
    from resnet_gen.live.build import ResidualBlock
    from resnet_gen.unet import build_unet, load_unet
    from resnet_gen.unet.emit import emit_unet

    spec = load_unet("unet_tiny")
    with torch.device("meta"):
        model = build_unet(spec)
    classes = runtime_classes()
    own = {type(module) for module in model.modules() if not type(module).__module__.startswith("torch.")}
    blocks = {cls for cls in own if issubclass(cls, ResidualBlock)}
    helpers = {cls.__name__ for cls in own - blocks}
    assert helpers == {
        "UNet",
        "SinusoidalTimesteps",
        "TimestepMLP",
        "DownStage",
        "MidStage",
        "UpStage",
        "SelfAttention",
        "Downsample",
        "Upsample",
    }
    assert blocks and {cls.__name__ for cls in blocks} == {"ResidualBlock"} and "ResBlock" not in classes
    assert all(cls is classes[cls.__name__] for cls in own - blocks)
    assert set(emitted_classes(emit_unet(spec))) == helpers | {"ResBlock"}


def test_squeeze_excite_is_the_papers_gate_in_both_back_ends() -> None:
    """The gate against a plain reference (Hu et al. 2018: pool, reduce, ReLU as timm's SEModule,
    expand, sigmoid, scale), and live and emitted nets agree with GELU elsewhere in the blocks."""
    from emit_support import copy_weights, import_source

    spec = rg.load_spec("cifar_resnet20", ["block.attention=se", "activation=gelu"])
    live = rg.build(spec).double().eval()
    module = import_source(emit(spec), "cifar_resnet20_se_gelu")
    ours = getattr(module, spec.name)().double().eval()
    copy_weights(live, ours)
    se = live.get_submodule("layer1.0.se")
    assert isinstance(se.act, nn.ReLU) and isinstance(live.get_submodule("layer1.0.act1"), nn.GELU)
    x = torch.randn(2, 16, 8, 8, dtype=torch.float64)
    pooled = x.mean((2, 3), keepdim=True)
    gate = torch.sigmoid(se.fc2(torch.relu(se.fc1(pooled))))
    torch.testing.assert_close(se(x), x * gate)
    image = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    torch.testing.assert_close(ours(image), live(image))


def test_a_helper_that_leans_on_its_module_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A class copied alone must not use its module's own functions or constants."""
    (tmp_path / "fake.py").write_text(
        "SCALE = 2\n\n\nclass Leaning:\n    def forward(self, x):\n        return x * SCALE\n", encoding="utf-8"
    )
    monkeypatch.setattr(helpers, "RUNTIME_DIR", tmp_path)
    monkeypatch.setattr(helpers, "helper_modules", lambda: {"Leaning": "fake"})
    helpers._parsed.cache_clear()
    helpers.helper_source.cache_clear()
    try:
        with pytest.raises(EmitError, match="Leaning uses SCALE of its module"):
            helpers.helper_source("Leaning")
    finally:
        helpers._parsed.cache_clear()
        helpers.helper_source.cache_clear()


def test_an_unknown_helper_is_an_emit_error() -> None:
    with pytest.raises(EmitError, match="no helper class 'Nope'"):
        helpers.helper_source("Nope")
