"""Tied stages: one block's weights applied N times, its branch scaled by a step size dt, the
forward-Euler reading of a ResNet (``h_{t+1} = h_t + dt * f(h_t)``). Held to reference loops
written out here over torchvision's BasicBlock, to torch's own counts of the built module, and
to the emitted source."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from emit_support import import_source
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torch_helpers import randomize
from torchvision.models.resnet import BasicBlock

import resnet_gen as rg
from resnet_gen.cli import main
from resnet_gen.compile import compile_spec
from resnet_gen.emit import emit_source

TIED = ["stages[0].tied=true", "stages[0].step_size=0.25"]  # cifar_resnet20's first stage: 3 x 16 wide


def _net(name: str, overrides: list[str]) -> nn.Module:
    _, plan = compile_spec(name, overrides)
    model = rg.build(plan).double().eval()
    randomize(model, seed=3)
    return model


def _macs(model: nn.Module, x: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return int(counter.get_total_flops()) // 2


def test_a_tied_post_activation_stage_is_the_reference_loop() -> None:
    """Post-activation (He et al. 2015): the ReLU follows the addition, h <- relu(h + dt * f(h)),
    with f torchvision's BasicBlock branch (conv, bn, relu, conv, bn) on the one block's weights."""
    model = _net("cifar_resnet20", TIED)
    reference = BasicBlock(16, 16).double().eval()
    reference.load_state_dict(
        {k.removeprefix("layer1.0."): v for k, v in model.state_dict().items() if k.startswith("layer1.")}
    )
    x = torch.randn(2, 16, 8, 8, dtype=torch.float64)
    h = x
    with torch.no_grad():
        for _ in range(3):
            branch = reference.bn2(reference.conv2(reference.relu(reference.bn1(reference.conv1(h)))))
            h = torch.relu(h + 0.25 * branch)
        torch.testing.assert_close(model.get_submodule("layer1")(x), h, rtol=0, atol=1e-12)


def test_a_tied_pre_activation_stage_is_forward_euler() -> None:
    """Pre-activation (He et al. 2016): the addition ends the block, h <- h + dt * f(h) exactly,
    with f = conv(relu(bn(conv(relu(bn(h)))))) written out here."""
    model = _net("cifar_resnet110_pre", ["stages[0].blocks=4", "stages[0].tied=true", "stages[0].step_size=0.125"])
    block = model.get_submodule("layer1.0")
    assert {name for name, _ in block.named_children()} >= {"bn1", "conv1", "bn2", "conv2"}
    x = torch.randn(2, 16, 8, 8, dtype=torch.float64)
    h = x
    with torch.no_grad():
        for _ in range(4):
            f = block.conv2(torch.relu(block.bn2(block.conv1(torch.relu(block.bn1(h))))))
            h = h + 0.125 * f
        torch.testing.assert_close(model.get_submodule("layer1")(x), h, rtol=0, atol=1e-12)


def test_params_once_macs_per_step_against_torch() -> None:
    """One block's parameters; N times one block's MACs, as torch's FlopCounterMode counts them."""
    _, plan = compile_spec("cifar_resnet20", TIED)
    _, untied = compile_spec("cifar_resnet20", [])
    model = rg.build(plan).eval()
    report = rg.analyze(plan)
    block_params = sum(p.numel() for p in BasicBlock(16, 16).parameters())
    stage = plan.stages[0]
    assert (stage.tied, stage.repeats, stage.step_size, len(stage.blocks)) == (True, 3, 0.25, 1)
    assert stage.params == block_params == 4_672
    assert sum(p.numel() for p in model.parameters()) == report.params == rg.analyze(untied).params - 2 * block_params
    one_block = _macs(BasicBlock(16, 16), torch.randn(1, 16, 32, 32))
    assert stage.macs == 3 * one_block
    assert _macs(model, torch.randn(1, 3, 32, 32)) == report.macs == plan.macs == rg.analyze(untied).macs
    assert report.count("fvcore") == rg.analyze(untied).count("fvcore")
    stage_keys = [k for k in model.state_dict() if k.startswith("layer1.")]
    assert stage_keys and all(k.startswith("layer1.0.") for k in stage_keys)


def test_emitted_source_equals_live_and_needs_only_torch() -> None:
    _, plan = compile_spec("cifar_resnet20", TIED)
    source = emit_source(plan)
    assert "torchdiffeq" not in source
    imports = {line.split()[1] for line in source.splitlines() if line.startswith(("import ", "from "))}
    assert imports <= {"__future__", "torch", "typing", "torch.nn", "torch.nn.functional", "torch.utils.checkpoint"}
    assert "x = x * 0.25" in source and "TiedStage(" in source
    module = import_source(source, "emitted_tied_resnet20")
    live = _net("cifar_resnet20", TIED)
    emitted = module.ResNet().double().eval()
    emitted.load_state_dict(live.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(emitted(x), live(x))
        assert torch.equal(torch.jit.script(emitted)(x), live(x))


def test_a_tied_stage_drops_its_steps_at_the_rates_of_their_depths() -> None:
    """Stochastic depth over a tied stage: the rate rises at each application as it does over an
    untied stage's blocks (Huang et al. 2016's linear rule, written out here), in the live and
    the emitted networks alike, and the later stages keep their untied rates."""
    rate, depth = 0.2, 9  # cifar_resnet20: 3 stages of 3 blocks
    overrides = [*TIED, f"drop_path={rate}"]
    _, plan = compile_spec("cifar_resnet20", overrides)
    _, untied = compile_spec("cifar_resnet20", [f"drop_path={rate}"])
    assert plan.stages[0].drop_paths == tuple(rate * step / (depth - 1) for step in range(3))
    assert [b.drop_path for b in plan.blocks[1:]] == [b.drop_path for b in untied.blocks[3:]]
    live = rg.build(plan)
    emitted = import_source(emit_source(plan), "emitted_tied_drop_path").ResNet()
    emitted.load_state_dict(live.state_dict(), strict=True)
    x = torch.randn(4, 3, 32, 32)
    outputs = []
    for model in (live, emitted):
        seen: list[float] = []
        drop = model.get_submodule("layer1.0.drop_path")
        handle = drop.register_forward_pre_hook(lambda module, args, seen=seen: seen.append(module.rate))
        model.train()
        torch.manual_seed(5)
        outputs.append(model(x))
        handle.remove()
        assert seen == [rate * step / (depth - 1) for step in range(3)]
    assert torch.equal(outputs[0], outputs[1])
    torch.manual_seed(5)
    assert torch.equal(torch.jit.script(emitted)(x), outputs[1])


def test_the_catalog_spec_counts_from_its_untied_twin() -> None:
    """cifar_resnet56_tied: ResNet-56 less, in each group, the 7 block copies tying removes (the
    block counts from torchvision's BasicBlock); ResNet-56's MACs, counted by torch."""
    tied, twin = rg.analyze("cifar_resnet56_tied"), rg.analyze("cifar_resnet56")
    copies = sum(sum(p.numel() for p in BasicBlock(w, w).parameters()) for w in (16, 32, 64))
    assert tied.params == twin.params - 7 * copies == 172_506
    assert tied.macs == twin.macs
    model = rg.build(rg.load_spec("cifar_resnet56_tied")).eval()
    assert sum(p.numel() for p in model.parameters()) == tied.params
    assert _macs(model, torch.randn(1, 3, 32, 32)) == tied.macs


@pytest.mark.parametrize(
    ("overrides", "where", "says"),
    [
        (["stages[1].tied=true"], "stages[1].tied", "stride 2; put the downsampling"),
        (["stages[0].width=32", "stages[0].tied=true"], "stages[0].tied", "takes 16 channels and gives 32"),
        (["stages[0].tied=true", "shortcut=C"], "stages[0].tied", "identity shortcut"),
        (["stages[0].tied=true", "stages[0].step_size=0"], "stages[0].step_size", "must be > 0"),
        (["stages[0].tied=true", "stages[0].step_size=-1"], "stages[0].step_size", "must be > 0"),
        (["stages[0].step_size=0.5"], "stages[0].step_size", "tied stages only"),
        (
            ["stages[0].tied=true", "stages[0].inner_channels=[[16], [8], [16]]"],
            "stages[0].inner_channels",
            "must all be the same",
        ),
    ],
)
def test_bad_tying_is_located(overrides: list[str], where: str, says: str) -> None:
    with pytest.raises(rg.SpecError) as caught:
        compile_spec("cifar_resnet20", overrides)
    message = str(caught.value)
    assert where in message and says in message, message
    assert message.count("\n") == 0, message


def test_set_info_and_diagram_say_tied(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    main(["info", "cifar_resnet20", "--set", "stages[0].tied=true", "--set", "stages[0].step_size=0.25"])
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("layer1"))
    assert row.split()[:3] == ["layer1", "32x32", "16"] and row.split()[3] == "3"
    assert "tied: 3 steps of h=0.25 (forward Euler)" in row
    with pytest.raises(SystemExit) as caught:
        main(["validate", "cifar_resnet20", "--set", "stages[2].tied=true"])
    assert caught.value.code == 1
    err = capsys.readouterr().err
    assert "stages[2].tied" in err and "Traceback" not in err
    main(["diagram", "cifar_resnet56_tied", "-o", str(tmp_path)])
    svg = (tmp_path / "cifar_resnet56_tied.svg").read_text(encoding="utf-8")
    assert svg.count("tied: 8 steps of h=0.125 (forward Euler)") == 3


def test_layer_table_and_memory_hold_the_weights_once() -> None:
    """The per-layer table and the memory estimate walk every application of the tied block, but
    its parameters, gradients and buffers are the built module's, counted by torch."""
    _, plan = compile_spec("cifar_resnet20", TIED)
    report = rg.analyze(plan)
    rows = {row.path: row for row in report.per_layer(depth=2)}
    assert rows["layer1"].params == rows["layer1.0"].params == 4_672
    assert rows["layer1"].macs == 3 * _macs(BasicBlock(16, 16), torch.randn(1, 16, 32, 32))
    model = rg.build(plan)
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for b in model.buffers())
    memory = report.memory(batch=2)
    assert memory.gradients == 4 * params
    assert memory.parameters == 4 * (params + buffers)


def test_block_view_draws_the_step(tmp_path: Path) -> None:
    main(["diagram", "cifar_resnet56_tied", "--view", "blocks", "-o", str(tmp_path)])
    svg = (tmp_path / "cifar_resnet56_tied-blocks.svg").read_text(encoding="utf-8")
    assert "\u00d7 0.125" in svg and "step size dt" in svg


def test_inference_form_folds_the_tied_block_and_computes_the_same() -> None:
    """--target inference: the one block's batch norms fold into its convs once; in float64 the
    folded file computes what the live training form computes in eval mode."""
    spec = rg.load_spec("cifar_resnet56_tied")
    live = rg.build(spec).double().eval()
    randomize(live, seed=4)
    module = import_source(emit_source(rg.lower(spec), target="inference"), "inference_cifar_resnet56_tied")
    model = getattr(module, spec.name)().double()
    model.load_state_dict(module.fold_batch_norms(model, live.state_dict()), strict=True)
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected, got = live(x), model(x)
    assert ((got - expected).abs().max() / expected.abs().max()).item() < 1e-12


def _steps_by_hand(model: nn.Module, x: torch.Tensor, plan: rg.Plan) -> list[torch.Tensor]:
    """The network run piece by piece, a tied stage's block once per step: each block run's input,
    in order, then the logits last (the stem, the stages, torch's own head)."""
    for name in ("conv1", "bn1", "act1"):
        x = model.get_submodule(name)(x)
    inputs = []
    for stage in plan.stages:
        for block in stage.blocks:
            for _ in range(stage.repeats):
                inputs.append(x)
                x = model.get_submodule(block.path)(x)
    return [*inputs, model.forward_head(x)]  # type: ignore[operator]


def test_analyses_see_each_step_of_a_tied_stage_as_a_block() -> None:
    """Unravelled (Veit et al. 2016), N tied steps are N residual units: the path count is the
    untied net's, and the gradient at each step's input and each step's output are those of the
    network run step by step by hand."""
    from resnet_gen.analyses import block_sites
    from resnet_gen.analyses.common import Batch
    from resnet_gen.analyses.gradients import block_input_gradients
    from resnet_gen.analyses.paths import path_lengths
    from resnet_gen.analyses.shattered import block_outputs

    tied = rg.load_spec("cifar_resnet56_tied")
    assert path_lengths(tied).counts == path_lengths(rg.load_spec("cifar_resnet56")).counts  # 27 units
    _, plan = compile_spec("cifar_resnet20", TIED)
    sites = block_sites(plan)
    assert [site.label for site in sites[:4]] == [
        "layer1.0 step 1/3",
        "layer1.0 step 2/3",
        "layer1.0 step 3/3",
        "layer2.0",
    ]
    model = rg.build(plan).train()
    randomize(model, seed=5)
    images = torch.randn(4, 3, 32, 32)
    labels = torch.tensor([0, 3, 5, 9])
    measured = block_input_gradients(model, plan, Batch(images, labels))

    *inputs, logits = _steps_by_hand(model, images.clone().requires_grad_(True), plan)
    for tensor in inputs:
        tensor.retain_grad()
    nn.functional.cross_entropy(logits, labels).backward()  # type: ignore[no-untyped-call]
    expected = {site.label: float(tensor.grad.norm()) for site, tensor in zip(sites, inputs, strict=True)}  # type: ignore[union-attr]
    assert measured.keys() == expected.keys()
    for label, norm in expected.items():
        assert measured[label] == pytest.approx(norm, rel=1e-5), label

    model.eval()
    with torch.no_grad():
        outputs = block_outputs(model, sites, images)
        by_hand = _steps_by_hand(model, images, plan)
    for number, site in enumerate(sites):
        after = by_hand[number + 1] if number + 1 < len(sites) else None
        if after is not None:
            torch.testing.assert_close(outputs[site.label], after, rtol=0, atol=0)


def test_analyses_that_change_block_modules_refuse_a_tied_stage(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Lesions, responses and path gradients act on each block module as one unit; a tied stage's
    module is N steps, so they refuse it in one line (path counting alone still works)."""
    from resnet_gen.analyses.lesion import lesion
    from resnet_gen.analyses.path_gradients import path_gradients
    from resnet_gen.analyses.responses import layer_responses
    from resnet_gen.errors import SpecError

    _, plan = compile_spec("cifar_resnet20", TIED)
    model = rg.build(plan).eval()
    says = "cannot {what} a tied stage: layer1.0 is one block run 3 times"
    with pytest.raises(SpecError, match=says.format(what="lesion")):
        lesion(model, plan, None)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match=says.format(what="measure the responses of")):
        layer_responses(model, plan, None)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match=says.format(what="route gradients through")):
        path_gradients(plan)
    overrides = [item for pair in (("--set", item) for item in TIED) for item in pair]
    with pytest.raises(SystemExit) as stop:
        main(["analyze", "paths", "cifar_resnet20", *overrides, "-o", str(tmp_path)])
    assert stop.value.code == 1 and "pass --samples 0 to count its paths only" in capsys.readouterr().err
    main(["analyze", "paths", "cifar_resnet20", *overrides, "--samples", "0", "-o", str(tmp_path)])
    assert "cifar_resnet20_custom: 9 residual blocks, 512 paths" in capsys.readouterr().out
