"""The U-Nets through the CLI and the Python API: what works for classifier specs works for them
(validate, info, list, build, diagram, diff, gallery, new, torch.hub), and what does not apply is
refused in one located line with exit status 1 and nothing written (train, export, weights,
analyze, the block view, int8, timm's registry)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from conftest import ROOT, UNET_SPECS

import resnet_gen as rg
from resnet_gen.cli import main
from resnet_gen.diagram import render
from resnet_gen.runtime.diffusion_stages import UNet
from resnet_gen.unet import build_unet, load_unet, load_unet_and_plan, lower_unet
from resnet_gen.unet.diagram import resblock_diagram
from resnet_gen.unet.plan import MACS_CONVENTION
from resnet_gen.unet.report import unet_report

REFUSED = "layout: a diffusion U-Net spec; this works on classifier specs only"


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_assumptions() -> None:
    assert UNET_SPECS == ["ddpm_church_256", "ddpm_cifar10", "unet_tiny"]


@pytest.mark.parametrize("name", UNET_SPECS)
def test_plan_report_and_skips_hang_together(name: str) -> None:
    spec, plan = load_unet_and_plan(name)
    assert plan == lower_unet(spec) == lower_unet(load_unet(name))
    report = unet_report(plan)
    assert (report.params, report.macs) == (plan.params, plan.macs)
    assert sum(row.params for row in report.rows) == plan.params
    # Every skip is taken once, by an up ResBlock that works at the resolution it was made at.
    sizes = {stage.path: stage.size for stage in plan.down}
    made = [("conv_in", plan.size)]
    for stage in plan.down:
        made += [
            (f"{stage.path}.{'attentions' if stage.attentions else 'resnets'}.{i}", stage.size)
            for i in range(len(stage.resnets))
        ]
        if stage.resample is not None:
            made.append((stage.resample.path, stage.resample.out_size))
    assert sorted(source for source, _, _ in plan.skips) == sorted(path for path, _ in made)
    where = dict(made)
    current = plan.mid.channels  # each up ResBlock reads the running tensor and its skip, concatenated
    for stage in plan.up:
        assert len(stage.skips) == len(stage.resnets)
        for (source, channels), block in zip(stage.skips, stage.resnets, strict=True):
            assert where[source] == stage.size and block.in_channels == current + channels
            current = block.out_channels
    assert sizes  # the down path exists
    attention_rows = [row for row in report.rows if "attention" in row.detail]
    assert {row.name for row in attention_rows} == {stage.path for stage in plan.stages if stage.attentions}


def test_validate_info_and_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["validate", *UNET_SPECS], capsys)
    assert (code, err) == (0, "") and out.splitlines()[-1] == "3 specs: 3 valid"
    code, out, _ = _run(["info", "ddpm_cifar10"], capsys)
    assert code == 0
    assert "params: 35,746,307" in out and "params match" in out
    assert f"MACs convention: {MACS_CONVENTION}" in out
    assert re.search(r"down_blocks\.1 +8x8 +256 +2 .*attention 16x16", out)
    code, out, _ = _run(["info", "unet_tiny", "--json"], capsys)
    data = json.loads(out)
    _, plan = load_unet_and_plan("unet_tiny")
    assert data["params"] == plan.params and sum(row["macs"] for row in data["rows"]) == plan.macs == data["macs"]
    assert data["macs_convention"] == MACS_CONVENTION
    code, out, _ = _run(["info", "unet_tiny", "--set", "unet.layers_per_block=2"], capsys)
    assert code == 0 and out.startswith("unet_tiny_custom: unet_tiny with unet.layers_per_block=2")
    code, out, _ = _run(["list", "--family", "diffusion"], capsys)
    assert code == 0 and [line.split()[0] for line in out.splitlines()[1:]] == UNET_SPECS


def test_build_both_targets_and_refuse_int8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["build", "unet_tiny", "-o", str(tmp_path / "a")], capsys)
    assert (code, err) == (0, "") and (tmp_path / "a" / "unet_tiny.py").is_file()
    code, _, _ = _run(["build", "unet_tiny", "--target", "inference", "-o", str(tmp_path / "b")], capsys)
    assert code == 0 and "requires_grad_(False)" in (tmp_path / "b" / "unet_tiny.py").read_text()
    code, out, err = _run(["build", "unet_tiny", "--target", "int8", "-o", str(tmp_path / "c")], capsys)
    assert code == 1 and out == ""
    assert (
        err
        == "error: unet_tiny: cannot write source: --target int8 is not written for U-Nets (int8 quantisation is for the classifiers); use training or inference\n"
    )
    assert not list((tmp_path / "c").glob("*.py"))


def test_diagram_draws_the_u_with_skips_between_matching_resolutions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = _run(["diagram", "ddpm_cifar10", "--format", "dot", "-o", str(tmp_path)], capsys)
    assert code == 0
    dot = (tmp_path / "ddpm_cifar10.dot").read_text()
    _, plan = load_unet_and_plan("ddpm_cifar10")
    # Each down stage shares a rank with the up stage of its resolution: the two arms of the U.
    for index, stage in enumerate(plan.down):
        partner = plan.up[len(plan.down) - 1 - index]
        assert partner.size == stage.size
        assert re.search(rf'rank=same\s+"{re.escape(stage.path)}"\s+"{re.escape(partner.path)}"', dot)
    skips = re.findall(r'"?([\w.]+)"? -> "?([\w.]+)"? \[[^\]]*label="skip ([\d, ]+)"', dot)
    assert skips
    sizes = {stage.path: stage.size for stage in plan.stages} | {"conv_in": plan.size}
    outs = {stage.path: stage.out_size for stage in plan.down} | {"conv_in": plan.size}
    for source, target, _ in skips:
        assert sizes[target] in (sizes[source], outs[source])
    assert sum(len(widths.split(",")) for _, _, widths in skips) == len(plan.skips)
    attention = re.findall(r'"?([\w.]+)"? \[[^\]]*penwidth=2', dot)
    assert set(attention) == {stage.path for stage in plan.stages if stage.attentions}


@pytest.mark.parametrize("injection", ["add", "scale_shift"])
def test_block_view_draws_the_resblock_as_its_steps(
    injection: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The block view draws the ResBlocks as the classifiers' block view draws every kind: one
    drawing per structure (identity, projection shortcut), the layers on the spine in diffusers'
    order, the time embedding through its projection into the injection (before the second norm,
    or after it), the projection into the final addition; the macro view's title spells the chain."""
    items = ["--set", f"unet.time_injection={injection}"]
    code, _, err = _run(
        ["diagram", "unet_tiny", *items, "--view", "blocks", "--format", "dot", "-o", str(tmp_path)], capsys
    )
    assert code == 0, err
    dot = (tmp_path / "unet_tiny_custom-blocks.dot").read_text()
    assert re.findall(r"cluster_kind\d+ \{\n\t\tclass=\"block-kind (\w+)\"", dot) == ["identity", "projection"]
    spine = re.findall(r'"kind2/([\w/]+)" -> "kind2/([\w/]+)" \[weight=20\]', dot)
    inject = "time_add" if injection == "add" else "time_scale_shift"
    middle = [inject, "tail/norm2"] if injection == "add" else ["branch/norm2", inject]
    expected = ["input", "branch/norm1", "branch/act1", "branch/conv1", *middle, "tail/act2", "tail/conv2", "add"]
    assert [start for start, _ in spine] == expected and spine[-1] == ("add", "output")
    assert re.search(rf'"kind2/time/time_emb_proj" -> "kind2/{inject}" \[[^\]]*style=dotted', dot)
    assert '"kind2/time" -> "kind2/time/time_act"' in dot
    assert '"kind2/input" -> "kind2/shortcut/conv_shortcut"' in dot and '"kind1/input" -> "kind1/add"' in dot
    code, _, _ = _run(["diagram", "unet_tiny", *items, "--format", "dot", "-o", str(tmp_path)], capsys)
    assert code == 0 and "ResBlock: GroupNorm 8, SiLU, 3x3 conv" in (tmp_path / "unet_tiny_custom.dot").read_text()


def test_diff_of_two_unets_and_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["diff", "unet_tiny", "ddpm_cifar10"], capsys)
    assert code == 0 and "unet.block_out_channels[0]: 32 -> 128" in out
    assert re.search(r"total +702,499 +35,746,307", out)
    code, _, err = _run(["diff", "unet_tiny", "resnet18"], capsys)
    assert code == 1 and "one is a diffusion U-Net and one a classifier" in err
    code, _, err = _run(["diff", "unet_tiny", "ddpm_cifar10", "--diagram", str(tmp_path / "d.svg")], capsys)
    assert code == 1 and not (tmp_path / "d.svg").exists()


def test_gallery_shows_the_unets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["gallery", "unet_tiny", "resnet18", "-o", str(tmp_path / "g")], capsys)
    assert (code, err) == (0, "")
    index = (tmp_path / "g" / "index.html").read_text()
    assert "unet_tiny" in index and "diffusion" in index
    assert (tmp_path / "g" / "svg" / "unet_tiny.svg").is_file()
    # The U-Net's block view is its ResBlock, the one the diagram command draws.
    _, plan = load_unet_and_plan("unet_tiny")
    blocks = (tmp_path / "g" / "svg" / "unet_tiny-blocks.svg").read_bytes()
    assert blocks == render(resblock_diagram(plan), "svg")
    assert (tmp_path / "g" / "svg" / "resnet18-blocks.svg").is_file()
    page = (tmp_path / "g" / "pages" / "unet_tiny.html").read_text()
    assert "block view" in page and "def unet_tiny() -&gt; UNet" in page


def test_new_from_a_unet_and_its_examples(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = _run(["new", "my_unet", "--from", "ddpm_cifar10"], capsys)
    assert code == 0 and "wrote specs/my_unet.yaml" in out
    assert load_unet("specs/my_unet.yaml").unet == load_unet("ddpm_cifar10").unet
    text = (tmp_path / "specs" / "my_unet.yaml").read_text()
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# 'resnet-gen info")) + 1
    examples = [line[2:] for line in lines[start:] if line.startswith("# ")]
    (tmp_path / "specs" / "uncommented.yaml").write_text(text + "\n".join(examples) + "\n")
    spec = load_unet("specs/uncommented.yaml")
    assert spec.unet.block_out_channels == [64, 128, 128] and spec.input.channels == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "unet_tiny", "--data", "synthetic", "--epochs", "1"],
        ["analyze", "gradients", "unet_tiny"],
    ],
    ids=["train", "analyze"],
)
def test_classifier_commands_refuse_a_unet(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(argv, capsys)
    assert code == 1 and out == ""
    assert (
        err
        == f"error: specs/unet_tiny.yaml:3:1: {REFUSED} (U-Nets: validate, info, diagram, build, list, diff, new, gallery, export, and resnet_gen.unet in Python)\n"
    )
    assert not list(tmp_path.iterdir())


def test_weights_command_and_python_api_refuse_a_unet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = tmp_path / "unet.pt"
    torch.save(build_unet(load_unet("unet_tiny")).state_dict(), checkpoint)
    code, _, err = _run(["weights", "unet_tiny", str(checkpoint)], capsys)
    assert code == 1 and REFUSED in err
    with pytest.raises(rg.SpecError, match=re.escape(REFUSED)):
        rg.load_spec("ddpm_cifar10")


def test_torch_hub_builds_a_unet_and_loads_its_weights(tmp_path: Path) -> None:
    source = build_unet(load_unet("unet_tiny"))
    weights = tmp_path / "unet_tiny.pt"
    torch.save(source.state_dict(), weights)
    model = torch.hub.load(str(ROOT), "unet_tiny", source="local", weights=weights, overrides=None)
    assert isinstance(model, torch.nn.Module) and type(model).__name__ == UNet.__name__
    x = torch.randn(1, 3, 16, 16)
    assert torch.equal(model(x, 4), source(x, 4))
    with pytest.raises(rg.SpecError, match="timm's keywords are for classifiers"):
        torch.hub.load(str(ROOT), "unet_tiny", source="local", num_classes=10)


def test_timm_registry_leaves_the_unets_out(tmp_path: Path) -> None:
    """timm's registry and create_model's keywords are a classifier's: a folder's U-Nets (and the
    catalog's, by the same filter in register_catalog) are not registered."""
    from resnet_gen import timm as rg_timm

    (tmp_path / "small_net.yaml").write_text("extends: resnet18\nstages:\n  - {blocks: 1, width: 16}\n")
    (tmp_path / "my_unet.yaml").write_text("extends: unet_tiny\n")
    assert rg_timm.register_folder(tmp_path, prefix="unet_test_") == ["unet_test_small_net"]


def test_schema_checks_unet_files() -> None:
    """The editors' schema: a U-Net file is valid, and one that mixes in a classifier's key or
    misspells a U-Net key is flagged at that key."""
    from jsonschema import Draft202012Validator

    from resnet_gen.spec.schema import file_schema

    validator = Draft202012Validator(file_schema())
    good = {"layout": "unet", "input": {"size": 16}, "unet": {"block_out_channels": [32, 64], "downsample": "avg"}}
    assert not list(validator.iter_errors(good))
    assert list(validator.iter_errors({**good, "stages": [{"blocks": 1, "width": 8}]}))
    errors = list(validator.iter_errors({**good, "unet": {"block_out_channels": [32], "layers_per_blok": 2}}))
    assert [list(error.absolute_path) for error in errors] == [["unet"]] and "layers_per_blok" in errors[0].message


def test_the_users_loop_on_a_unet_needs_no_torch(tmp_path: Path) -> None:
    """new, validate, info, diff, diagram, build (both targets), gallery on a U-Net, with torch
    unimportable (as in a venv without it)."""
    from test_lean_install import without_torch

    steps = [
        ["new", "my_unet", "--from", "unet_tiny"],
        ["validate"],
        ["info", "specs/my_unet.yaml"],
        ["diff", "unet_tiny", "specs/my_unet.yaml"],
        ["diagram", "--format", "dot"],
        ["build"],
        ["build", "--target", "inference"],
        ["gallery"],
    ]
    for args in steps:
        done = without_torch(args, tmp_path)
        assert (done.returncode, done.stderr) == (0, ""), args
    spec = load_unet(tmp_path / "specs/my_unet.yaml")
    from resnet_gen.unet.emit import emit_unet

    assert (tmp_path / "out/my_unet.py").read_text() == emit_unet(spec, "my_unet.yaml")
    assert (tmp_path / "out/my_unet.dot").is_file() and (tmp_path / "out/inference/my_unet.py").is_file()
    assert (tmp_path / "out/gallery/pages/my_unet.html").is_file()


@pytest.mark.slow
def test_export_onnx_and_pt2_with_a_dynamic_batch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Both files take (sample, timestep) for any batch and give the live module's noise; the
    checkpoint given is the one exported; int8 is refused before anything is written."""
    import onnxruntime

    source = build_unet(load_unet("unet_tiny"))
    checkpoint = tmp_path / "unet.pt"
    torch.save(source.state_dict(), checkpoint)
    source.eval()
    code, out, err = _run(
        ["export", "unet_tiny", "--format", "onnx", "-o", str(tmp_path / "u.onnx"), "--weights", str(checkpoint)],
        capsys,
    )
    assert (code, err) == (0, "") and "inputs sample, timestep; output noise" in out
    session = onnxruntime.InferenceSession(str(tmp_path / "u.onnx"))
    code, _, err = _run(
        ["export", "unet_tiny", "--format", "pt2", "-o", str(tmp_path / "u.pt2"), "--weights", str(checkpoint)],
        capsys,
    )
    assert (code, err) == (0, "")
    program = torch.export.load(str(tmp_path / "u.pt2")).module()
    for batch in (1, 3):
        x, t = torch.randn(batch, 3, 16, 16), torch.arange(batch) * 300
        with torch.no_grad():
            expected = source(x, t)
            torch.testing.assert_close(program(x, t), expected, rtol=0, atol=1e-6)
        (noise,) = session.run(["noise"], {"sample": x.numpy(), "timestep": t.numpy()})
        torch.testing.assert_close(torch.from_numpy(noise), expected, rtol=1e-4, atol=1e-5)
    code, out, err = _run(
        ["export", "unet_tiny", "--format", "int8", "--calibration", "digits", "-o", str(tmp_path / "q.pt")], capsys
    )
    assert code == 1 and out == "" and "export a U-Net as onnx or pt2" in err
    assert not (tmp_path / "q.pt").exists()
