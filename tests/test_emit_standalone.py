"""The emitted file as a user's project sees it: importable with torch alone, and usable by
``torch.jit.script``, ``torch.compile(fullgraph=True)`` and ``torch.export``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT
from emit_support import emitted_catalog_module, emitted_model

import resnet_gen as rg

GENERATED = ROOT / "generated"
SMALL = "cifar_resnet20"


def test_imports_with_only_torch(tmp_path: Path) -> None:
    """A fresh interpreter that sees the generated files and torch's site-packages, and no resnet_gen."""
    for name in ("resnet50", "seresnext26t_32x4d", "resnetv2_50x1_bit"):
        shutil.copy(GENERATED / f"{name}.py", tmp_path)
    site_packages = Path(torch.__file__).resolve().parent.parent
    code = f"""
import sys
sys.path[:] = [{str(tmp_path)!r}, {str(site_packages)!r}] + [p for p in sys.path if 'site-packages' not in p]
try:  # (site-packages may hold an empty resnet_gen/ folder of package data: a bare namespace)
    import resnet_gen.spec
except ImportError:
    pass
else:
    raise AssertionError('resnet_gen is importable')
import torch
from resnet50 import resnet50
from seresnext26t_32x4d import seresnext26t_32x4d
from resnetv2_50x1_bit import resnetv2_50x1_bit
for factory in (resnet50, seresnext26t_32x4d, resnetv2_50x1_bit):
    model = factory().eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64))
    print(factory.__name__, sum(p.numel() for p in model.parameters()), tuple(out.shape))
assert not any(name.startswith('resnet_gen.') for name in sys.modules)
"""
    # -I: no user site, no environment variables, no working folder on the path; -S: no .pth files
    # (the development install of resnet_gen is one).
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split("\n")
    for line, name in zip(lines, ("resnet50", "seresnext26t_32x4d", "resnetv2_50x1_bit"), strict=False):
        assert line == f"{name} {rg.analyze(rg.load_spec(name)).params} (1, 1000)"


def _model(name: str) -> torch.nn.Module:
    model = getattr(emitted_catalog_module(name), name)()
    assert isinstance(model, torch.nn.Module)
    return model.eval()


# Specs that together use every helper module the templates have.
SCRIPTED = [
    ("cifar_resnet20", []),  # zero-pad shortcut
    ("resnetblur18", ["drop_path=0.1"]),  # blur pool, drop path
    ("ecaresnet26t", ["backbone.output_stride=8"]),  # ECA, avg-down with identity and same-pad pools
    ("seresnet18", ["norm=frozen_batch"]),  # SE, frozen batch norm
    ("resnetv2_50d_evos", []),  # EvoNorm-S0
    ("resnetv2_50d_frn", []),  # filter response norm
    ("resnetv2_50x1_bit", ["backbone.features_only=true", "backbone.frozen_stages=1"]),  # StdConv, feature list
]


@pytest.mark.parametrize(("name", "overrides"), SCRIPTED, ids=[name for name, _ in SCRIPTED])
def test_jit_script(name: str, overrides: list[str]) -> None:
    spec = rg.load_spec(name, overrides)
    torch.manual_seed(0)
    model = emitted_model(spec).eval()
    scripted = torch.jit.script(model)
    x = torch.randn(2, spec.input.channels, 64, 64)
    with torch.no_grad():
        expected, got = model(x), scripted(x)
    for a, b in zip(
        got if isinstance(got, list) else [got], expected if isinstance(expected, list) else [expected], strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", [SMALL, "resnet50"])
def test_torch_export(name: str) -> None:
    model = _model(name)
    x = torch.randn(1, 3, 32, 32)
    program = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model(x), rtol=1e-5, atol=1e-5)


# Inductor (the default back end) on the small net; resnet50 with aot_eager, which captures and
# traces the same full graph without inductor's minute of C++ compilation on a small CPU.
@pytest.mark.parametrize(("name", "backend"), [(SMALL, "inductor"), ("resnet50", "aot_eager")])
def test_torch_compile_fullgraph(name: str, backend: str) -> None:
    torch._dynamo.reset()
    model = _model(name)
    compiled = torch.compile(model, fullgraph=True, backend=backend)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-4)
