"""Export: ONNX files that onnxruntime runs like torch, torch.export programs, the export command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import timm
import torch
from conftest import cli_env
from torch import nn
from torch_helpers import randomize

from resnet_gen import build, load_spec
from resnet_gen.cli import main
from resnet_gen.export import export_onnx, export_program, output_names
from resnet_gen.plan.layers import Pool

DEPTHS = [1, 1, 2, 2]
SIZE = 35  # odd maps (18, 9, 5, 3): the ResNet-D pools' last ceil-mode windows are partial
SMALL = [f"stages[{index}].blocks={blocks}" for index, blocks in enumerate(DEPTHS)] + [f"input.size={SIZE}"]
TOLERANCE = 1e-4


def _model(name: str, seed: int = 0, **backbone: object) -> nn.Module:
    model = build(load_spec(name, SMALL), **backbone)
    randomize(model, seed)
    return model.eval()


def _torch_outputs(model: nn.Module, x: torch.Tensor) -> list[np.ndarray]:
    with torch.no_grad():
        out = model(x)
    return [t.numpy() for t in (out if isinstance(out, list) else [out])]


def _onnx_outputs(path: Path, x: torch.Tensor) -> tuple[list[str], list[np.ndarray]]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    names = [o.name for o in session.get_outputs()]
    return names, session.run(None, {"input": x.numpy()})


CASES = [
    ("resnet18", {}),  # basic blocks
    ("resnetv2_50", {}),  # pre-activation
    ("resnet50_d", {"features_only": True, "output_stride": 16}),  # feature list; size-keeping pool when dilated
]


@pytest.mark.parametrize(("name", "backbone"), CASES)
def test_onnx_runs_in_onnxruntime_like_torch(tmp_path: Path, name: str, backbone: dict[str, object]) -> None:
    model = _model(name, **backbone)
    path = export_onnx(model, tmp_path / "net.onnx")
    x = torch.randn(3, 3, SIZE, SIZE)  # another batch size than the one traced
    names, ours = _onnx_outputs(path, x)
    assert names == output_names(model)
    reference = _torch_outputs(model, x)
    assert len(ours) == len(reference)
    for got, want in zip(ours, reference, strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE)


def test_resnet_d_average_pool_exports_like_timm(tmp_path: Path) -> None:
    """Deep stem and 2x2 avg-pool shortcuts (ceil_mode=True, count_include_pad=False): the ONNX file
    computes what our module and timm's resnet50d compute."""
    model = _model("resnet50_d", seed=3)
    pools = [
        (block.in_size, layer)
        for block in model.plan.blocks
        for layer in block.shortcut
        if isinstance(layer, Pool) and layer.type == "avg"
    ]
    assert pools and all(layer.ceil_mode and not layer.count_include_pad for _, layer in pools)
    assert any(size[0] % 2 for size, _ in pools)  # a partial last window is exercised
    reference = timm.create_model("resnet50d", layers=DEPTHS).eval()
    reference.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, SIZE, SIZE)
    _, (logits,) = _onnx_outputs(export_onnx(model, tmp_path / "resnet50d.onnx"), x)
    np.testing.assert_allclose(logits, _torch_outputs(model, x)[0], rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(logits, _torch_outputs(reference, x)[0], rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize(("name", "backbone"), [("resnetv2_50", {}), ("resnet50_d", {"features_only": True})])
def test_torch_export_program_runs_like_the_module(name: str, backbone: dict[str, object]) -> None:
    model = _model(name, **backbone)
    program = export_program(model)
    x = torch.randn(3, 3, SIZE, SIZE)
    with torch.no_grad():
        got = program.module()(x)
    for a, b in zip(got if isinstance(got, list) else [got], _torch_outputs(model, x), strict=True):
        np.testing.assert_allclose(a.numpy(), b, rtol=0, atol=1e-5)


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the command line in this process (torch is already loaded here): exit code, stdout, stderr."""
    try:
        main(args)
        code = 0
    except SystemExit as exit:
        code = int(exit.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


SETS = [arg for item in SMALL for arg in ("--set", item)]


def test_export_command_writes_the_same_file_every_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = []
    for run in ("a", "b"):
        target = tmp_path / run / "net.onnx"
        code, out, err = _cli(["export", "resnet18", *SETS, "-o", str(target)], capsys)
        assert code == 0, err
        assert out == f"wrote {target}\n"
        assert sorted(p.name for p in target.parent.iterdir()) == ["net.onnx"]  # nothing left beside it
        files.append(target.read_bytes())
    assert files[0] == files[1]
    names, (logits,) = _onnx_outputs(tmp_path / "a" / "net.onnx", torch.randn(1, 3, SIZE, SIZE))
    assert names == ["logits"] and logits.shape == (1, 1000)


def test_export_command_default_path_and_bad_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = _cli(["export", "resnet18", *SETS, "--format", "pt2"], capsys)
    assert code == 0, err
    # Ad-hoc output goes to out/, and an overridden net is not written under the catalog's name.
    assert out == f"wrote {Path('out') / 'resnet18_custom.pt2'}\n"
    assert not (tmp_path / "generated").exists()
    program = torch.export.load(tmp_path / "out" / "resnet18_custom.pt2")
    assert program.module()(torch.zeros(2, 3, SIZE, SIZE)).shape == (2, 1000)
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, out, err = _cli(["export", "resnet18", *SETS, "-o", str(blocker / "net.onnx")], capsys)
    assert code == 1 and out == ""
    assert err == f"error: {blocker}: is a file, not a folder; choose another path with -o\n"


def test_commands_import_torch_only_when_they_run() -> None:
    probe = (
        "import sys, resnet_gen, resnet_gen.cli, resnet_gen.weights; "
        "from resnet_gen.cli import main; main(['validate', 'resnet18']); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=cli_env(), check=False)
    assert result.returncode == 0, result.stderr
