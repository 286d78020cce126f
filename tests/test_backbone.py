"""Backbone options against independent references: torchvision's feature extractor and dilated
ResNets, timm's ``features_only`` models with ``output_stride``, for the same weights."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from torch import nn
from torch_helpers import randomize
from torchvision.models.feature_extraction import create_feature_extractor

from resnet_gen import SpecError, analyze, build, load_spec, lower
from resnet_gen.convert.timm_resnetv2 import to_timm
from resnet_gen.spec.backbone import with_backbone

ODD = 35  # odd sizes all the way down (18, 9, 5, 3): ceil-mode pools and padded edges are exercised
EVEN = 64
# Fewer blocks keep the tests fast; two blocks in the last stages still cover a dilated stage's
# first block (previous dilation) and later blocks (full dilation). References get the same depth.
DEPTHS = [1, 1, 2, 2]
SHALLOW = [f"stages[{index}].blocks={blocks}" for index, blocks in enumerate(DEPTHS)]


def _eval_outputs(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    model.eval()
    with torch.no_grad():
        out = model(x)
    return list(out.values()) if isinstance(out, dict) else list(out)


def _assert_all_close(ours: list[torch.Tensor], theirs: list[torch.Tensor]) -> None:
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def _ours(name: str, seed: int = 0, **backbone: object) -> nn.Module:
    model = build(load_spec(name, SHALLOW), **backbone).double()
    # Fixed buffers outside the state_dict (blur-pool filters) are not weights: keep them.
    saved = dict(model.state_dict())
    fixed = {key: value.clone() for key, value in model.named_buffers() if key not in saved}
    randomize(model, seed)
    with torch.no_grad():
        for key, value in model.named_buffers():
            if key in fixed:
                value.copy_(fixed[key])
    return model


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_features_equal_torchvision_feature_extractor(name: str) -> None:
    ours = _ours(name, features_only=True)
    block = torchvision.models.resnet.BasicBlock if name == "resnet18" else torchvision.models.resnet.Bottleneck
    reference = torchvision.models.resnet.ResNet(block, DEPTHS).double()
    missing, unexpected = reference.load_state_dict(ours.state_dict(), strict=False)
    assert sorted(missing) == ["fc.bias", "fc.weight"] and not unexpected
    nodes = {"relu": "0", "layer1": "1", "layer2": "2", "layer3": "3", "layer4": "4"}
    extractor = create_feature_extractor(reference, return_nodes=nodes)
    x = torch.randn(2, 3, ODD, ODD, dtype=torch.float64)
    _assert_all_close(_eval_outputs(ours, x), _eval_outputs(extractor, x))
    # feature_info: channels and reduction as the maps really are.
    maps = _eval_outputs(ours, torch.randn(1, 3, EVEN, EVEN, dtype=torch.float64))
    assert ours.feature_info.channels() == [m.shape[1] for m in maps]
    assert ours.feature_info.reduction() == [EVEN // m.shape[-1] for m in maps] == [2, 4, 8, 16, 32]
    assert ours.feature_info.module_name() == ["act1", "layer1", "layer2", "layer3", "layer4"]


@pytest.mark.parametrize(("output_stride", "dilate"), [(16, [False, False, True]), (8, [False, True, True])])
def test_output_stride_equals_torchvision_dilation(output_stride: int, dilate: list[bool]) -> None:
    ours = _ours("resnet50", output_stride=output_stride)
    bottleneck = torchvision.models.resnet.Bottleneck
    reference = torchvision.models.resnet.ResNet(bottleneck, DEPTHS, replace_stride_with_dilation=dilate).double()
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, ODD, ODD, dtype=torch.float64)
    _assert_all_close(_eval_outputs(ours, x), _eval_outputs(reference, x))
    nodes = {"layer4": "4"}
    ours_features = build(
        load_spec("resnet50", SHALLOW), features_only=True, out_indices=[4], output_stride=output_stride
    )
    ours_features.double().load_state_dict({k: v for k, v in ours.state_dict().items() if not k.startswith("fc.")})
    _assert_all_close(
        _eval_outputs(ours_features, x), _eval_outputs(create_feature_extractor(reference, return_nodes=nodes), x)
    )


V1_CASES = [
    ("resnet18", "resnet18", 8, None, ODD),  # basic blocks dilated: timm allows it, torchvision refuses
    ("resnet34", "resnet34", 16, [1, 2, 4], ODD),
    ("resnet50", "resnet50", None, [0], ODD),
    ("resnet50d", "resnet50_d", 16, None, ODD),  # avg-pool shortcut in a dilated stage: timm's AvgPool2dSame
    ("resnet50d", "resnet50_d", 8, [2, 3, 4], ODD),
    # Anti-aliased blocks keep their blur/avg pool at stride 1 where a stage is dilated, as timm
    # does; timm's own aa nets need even sizes (their non-ceil pools disagree with the shortcut's).
    ("resnetblur18", "resnetblur18", 8, None, EVEN),
    ("seresnetaa50d", "seresnetaa50d", 16, [1, 4], EVEN),
]


@pytest.mark.parametrize(("timm_name", "spec", "output_stride", "out_indices", "size"), V1_CASES)
def test_features_equal_timm_features_only(
    timm_name: str, spec: str, output_stride: int | None, out_indices: list[int] | None, size: int
) -> None:
    options: dict[str, object] = {"features_only": True, "out_indices": out_indices}
    timm_options: dict[str, object] = {}
    if output_stride is not None:
        options["output_stride"] = timm_options["output_stride"] = output_stride
    if out_indices is not None:
        timm_options["out_indices"] = tuple(out_indices)
    ours = _ours(spec, **options)
    reference = timm.create_model(timm_name, features_only=True, layers=DEPTHS, **timm_options).double()
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, size, size, dtype=torch.float64)
    _assert_all_close(_eval_outputs(ours, x), _eval_outputs(reference, x))
    assert ours.feature_info.channels() == reference.feature_info.channels()
    assert ours.feature_info.reduction() == reference.feature_info.reduction()


def _timm_features_layout(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """timm's features_only wrapper flattens the top level: ``stages.0.x`` -> ``stages_0.x``."""
    out = {}
    for key, value in state_dict.items():
        head, _, rest = key.partition(".")
        if head in ("stem", "stages"):
            sub, _, rest = rest.partition(".")
            key = f"{head}_{sub}.{rest}"
        out[key] = value
    return out


V2_CASES = [
    ("resnetv2_18", None, None),
    ("resnetv2_18", 8, [1, 3, 4]),
    ("resnetv2_50", 16, None),
    ("resnetv2_50d", 8, [0, 4]),
]


@pytest.mark.parametrize(("name", "output_stride", "out_indices"), V2_CASES)
def test_preactivation_features_equal_timm_resnetv2(
    name: str, output_stride: int | None, out_indices: list[int] | None
) -> None:
    options: dict[str, object] = {"features_only": True, "out_indices": out_indices}
    timm_options: dict[str, object] = {}
    if output_stride is not None:
        options["output_stride"] = timm_options["output_stride"] = output_stride
    if out_indices is not None:
        timm_options["out_indices"] = tuple(out_indices)
    ours = _ours(name, **options)
    reference = timm.create_model(name, features_only=True, layers=DEPTHS, **timm_options).double()
    reference.load_state_dict(_timm_features_layout(to_timm(ours.state_dict(), ours.plan)))
    x = torch.randn(2, 3, ODD, ODD, dtype=torch.float64)
    _assert_all_close(_eval_outputs(ours, x), _eval_outputs(reference, x))
    assert ours.feature_info.channels() == reference.feature_info.channels()
    assert ours.feature_info.reduction() == reference.feature_info.reduction()


@pytest.mark.parametrize("name", ["resnet50", "resnetv2_50d"])
def test_output_stride_equals_timm_classifier(name: str) -> None:
    """The whole dilated classifier, not just its features, against timm's."""
    ours = _ours(name, output_stride=8)
    reference = timm.create_model(name, output_stride=8, layers=DEPTHS).double()
    state = ours.state_dict()
    reference.load_state_dict(to_timm(state, ours.plan) if name.startswith("resnetv2") else state)
    x = torch.randn(2, 3, ODD, ODD, dtype=torch.float64)
    torch.testing.assert_close(_eval_outputs(ours, x)[0], _eval_outputs(reference, x)[0], rtol=0, atol=1e-10)


def test_plan_carries_dilations_taps_and_counts() -> None:
    spec = with_backbone(load_spec("resnet50"), features_only=True, out_indices=[1, 3], output_stride=8)
    plan = lower(spec)
    assert [(stage.stride, stage.dilation) for stage in plan.stages] == [(1, 1), (2, 1), (1, 2)]
    layer3 = plan.stages[2].blocks
    assert (layer3[0].first_dilation, layer3[0].dilation, layer3[1].first_dilation) == (1, 2, 2)
    assert [(t.index, t.module, t.channels, t.reduction, t.size) for t in plan.features] == [
        (1, "layer1", 256, 4, (56, 56)),
        (3, "layer3", 1024, 8, (28, 28)),
    ]
    assert plan.head is None and len(plan.stages) == 3  # layer4 and the head are not needed
    model = build(spec)
    assert analyze(plan).params == sum(p.numel() for p in model.parameters())
    assert not any(key.startswith(("layer4.", "fc.")) for key in model.state_dict())


def _expected_frozen(model: nn.Module, frozen_stages: int) -> set[str]:
    stem = [name for name in model.stem]  # type: ignore[attr-defined]
    stages = [f"layer{i}" for i in range(1, frozen_stages + 1)]
    final = list(model.final) if frozen_stages == len(model.stages) else []  # type: ignore[attr-defined]
    return {*stem, *stages, *final}


@pytest.mark.parametrize(("name", "frozen_stages"), [("resnet18", 0), ("resnet50", 2), ("resnetv2_18", 4)])
def test_frozen_stages_stop_gradients_and_statistics(name: str, frozen_stages: int) -> None:
    model = _ours(name, frozen_stages=frozen_stages)
    frozen = _expected_frozen(model, frozen_stages)
    assert "conv1" in frozen and (frozen_stages < 4 or "norm" in frozen or "bn1" in frozen)
    # The frozen part holds no batch norm that could train: only frozen (buffer-only) norms.
    kinds = {top: {type(m).__name__ for m in child.modules()} for top, child in model.named_children()}
    assert all(not kinds[top] & {"BatchNorm2d", "Dropout", "DropPath"} for top in frozen)
    assert "FrozenBatchNorm2d" in kinds["bn1" if "bn1" in kinds else "layer1"]
    before = {key: value.clone() for key, value in model.state_dict().items() if "running_" in key}
    model.train()
    model(torch.randn(2, 3, EVEN, EVEN, dtype=torch.float64)).square().sum().backward()
    for key, parameter in model.named_parameters():
        is_frozen = key.split(".")[0] in frozen
        assert parameter.requires_grad != is_frozen, key
        assert (parameter.grad is None) == is_frozen, key
    after = model.state_dict()
    for key, value in before.items():
        unchanged = torch.equal(value, after[key])
        assert unchanged == (key.split(".")[0] in frozen), key
    # The frozen part computes the same in train and eval mode.
    x = torch.randn(2, 3, EVEN, EVEN, dtype=torch.float64)
    last_frozen = [name for name, _ in model.named_children() if name in frozen][-1]
    extractor = create_feature_extractor(model, [last_frozen])
    with torch.no_grad():
        trained = extractor.train()(x)[last_frozen]
        evaluated = extractor.eval()(x)[last_frozen]
    torch.testing.assert_close(trained, evaluated, rtol=0, atol=0)


def test_frozen_norms_keep_batch_norm_keys() -> None:
    """A frozen network's state_dict has the unfrozen one's keys: checkpoints load either way,
    torchvision's resnet18 weights too, and so do those of its FrozenBatchNorm2d form."""
    trained = build(load_spec("resnet18", SHALLOW))
    frozen = build(load_spec("resnet18", SHALLOW), frozen_stages=2)
    assert list(frozen.state_dict()) == list(trained.state_dict())
    randomize(trained)
    frozen.load_state_dict(trained.state_dict())
    trained.load_state_dict(frozen.state_dict())
    reference = torchvision.models.ResNet(torchvision.models.resnet.BasicBlock, DEPTHS)
    frozen_reference = torchvision.models.ResNet(
        torchvision.models.resnet.BasicBlock, DEPTHS, norm_layer=torchvision.ops.FrozenBatchNorm2d
    )
    for source in (reference, frozen_reference):
        randomize(source, seed=3)
        frozen.load_state_dict(source.state_dict())
        frozen.eval()
        source.eval()
        x = torch.randn(2, 3, EVEN, EVEN)
        with torch.no_grad():
            torch.testing.assert_close(frozen(x), source(x), rtol=0, atol=1e-5)


def test_features_only_with_frozen_stages_and_stem_only() -> None:
    model = build(load_spec("resnet18"), features_only=True, out_indices=[0], frozen_stages=3)
    assert [name for name, _ in model.named_children()] == ["conv1", "bn1", "act1"]
    assert all(not p.requires_grad for p in model.parameters())
    (stem,) = model(torch.randn(1, 3, EVEN, EVEN))
    assert stem.shape == (1, 64, 32, 32) and model.feature_info.reduction() == [2]


@pytest.mark.parametrize(
    ("backbone", "message"),
    [
        (
            "output_stride: 4",
            r"net\.yaml:3:3: backbone\.output_stride: must be 8, 16 or 32 \(got 4\); the stages past that stride are dilated instead",
        ),
        (
            "output_stride: 12",
            r"net\.yaml:3:3: backbone\.output_stride: must be 8, 16 or 32 \(got 12\); the stages past that stride are dilated instead",
        ),
        (
            "frozen_stages: 5",
            r"net\.yaml:3:3: backbone\.frozen_stages: frozen_stages 5 is past the last stage; "
            r"0 freezes the stem, 4 everything",
        ),
        (
            "features_only: true\n  out_indices: [1, 5]",
            r"net\.yaml:4:20: backbone\.out_indices\[1\]: feature 5 does not exist; 0 is the stem and 1\.\.4 the stages",
        ),
        ("out_indices: [2, 3]", r"net\.yaml:3:3: backbone\.out_indices: applies only with features_only: true"),
        (
            "features_only: true\n  out_indices: [3, 2]",
            r"net\.yaml:4:3: backbone\.out_indices: must be increasing, without repeats \(got \[3, 2\]\)",
        ),
    ],
)
def test_bad_backbone_options_are_located(tmp_path: Path, backbone: str, message: str) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(f"extends: resnet18\nbackbone:\n  {backbone}\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert len(caught.value.problems) == 1
    assert re.fullmatch(r".*/" + message, caught.value.problems[0]), caught.value.problems[0]


def test_output_stride_rules_that_need_the_whole_spec() -> None:
    with pytest.raises(SpecError, match=r"backbone\.output_stride: set either output_stride or stages\[3\]\.dilation"):
        load_spec("resnet50", ["backbone.output_stride=16", "stages[3].dilation=2"])
    with pytest.raises(SpecError, match="this network's output stride is 4; output_stride can only lower it"):
        load_spec("cifar_resnet20", ["backbone.output_stride=8"])
    with pytest.raises(
        SpecError,
        match=r"^build\(\): backbone\.output_stride: must be 8, 16 or 32 \(got 12\); the stages past that stride are dilated instead$",
    ):
        build(load_spec("resnet18"), output_stride=12)
    with pytest.raises(TypeError, match="need a Spec"):
        build(lower(load_spec("resnet18")), features_only=True)


def test_info_reports_feature_maps_and_frozen_modules(capsys: pytest.CaptureFixture[str]) -> None:
    from resnet_gen.cli import main

    sets = ["backbone.features_only=true", "backbone.out_indices=[0, 4]", "backbone.output_stride=8"]
    main(["info", "resnet18", *(arg for item in [*sets, "backbone.frozen_stages=1"] for arg in ("--set", item))])
    lines = capsys.readouterr().out.splitlines()
    assert "features: act1 64x112x112 (/2), layer4 512x28x28 (/8)" in lines
    assert "frozen: conv1, bn1, act1, maxpool, layer1 (no gradients, eval mode)" in lines
    main(["info", "resnet18", "--json", *(arg for item in sets for arg in ("--set", item))])
    data = json.loads(capsys.readouterr().out)
    assert data["features"][1] == {"index": 4, "module": "layer4", "channels": 512, "reduction": 8, "size": [28, 28]}
    assert data["frozen"] == []
