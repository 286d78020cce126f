"""Live and emitted backbones inside the code people plug ResNets into: frozen stages stay frozen
under torchvision's ``BackboneWithFPN``, ``create_feature_extractor``, ``torch.fx.symbolic_trace``
and a plain parent module; ``feature_info`` answers as timm's does in both forms; and FX int8
quantisation gives the live and the emitted model the same outputs."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
from emit_support import copy_weights, emitted_model
from timm.models import FeatureInfo as TimmFeatureInfo
from torch import nn
from torch.ao.quantization import get_default_qconfig_mapping
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
from torch_helpers import randomize
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.feature_extraction import create_feature_extractor

from resnet_gen import build, load_spec
from resnet_gen.spec import Spec
from resnet_gen.spec.backbone import with_backbone

SIZE = 64


def _pair(spec: Spec, seed: int = 0) -> tuple[nn.Module, nn.Module]:
    """The live and the emitted model of ``spec``, with the same random weights and statistics."""
    live = build(spec)
    randomize(live, seed)
    emitted = emitted_model(spec)
    copy_weights(live, emitted)
    return live, emitted


class Parent(nn.Module):
    """A plain module that owns the backbone, as a user's model would."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.backbone(x)
        return out


def _fpn(model: nn.Module, channels: list[int]) -> nn.Module:
    layers = {f"layer{index}": str(index - 1) for index in range(1, 5)}
    return BackboneWithFPN(model, layers, channels, out_channels=32)


WRAPPERS: dict[str, tuple[Callable[[nn.Module, list[int]], nn.Module], str]] = {
    # name: (wrap the model, the prefix the wrapper puts before the model's own keys)
    "plain parent": (lambda model, _: Parent(model), "backbone."),
    "BackboneWithFPN": (_fpn, "body."),
    "create_feature_extractor": (lambda model, _: create_feature_extractor(model, ["layer1", "layer4"]), ""),
    "symbolic_trace": (lambda model, _: torch.fx.symbolic_trace(model), ""),
}
# Full-depth nets: the issue counted 5 of 5 frozen norms drifting in resnet18, 11 of 11 in resnet50.
FROZEN_CASES = [("resnet18", 1, 5), ("resnet50", 1, 11)]


def _outputs(out: object) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    assert isinstance(out, dict)
    return list(out.values())


@pytest.mark.parametrize("wrapper", list(WRAPPERS))
@pytest.mark.parametrize(("name", "frozen_stages", "frozen_norms"), FROZEN_CASES)
def test_frozen_stages_stay_frozen_under_wrappers(
    name: str, frozen_stages: int, frozen_norms: int, wrapper: str
) -> None:
    spec = with_backbone(load_spec(name, [f"input.size={SIZE}"]), frozen_stages=frozen_stages)
    plan = build(spec).plan
    frozen = set(plan.frozen)
    channels = [stage.out_channels for stage in plan.stages]
    wrap, prefix = WRAPPERS[wrapper]
    for form, model in zip(("live", "emitted"), _pair(spec), strict=True):
        wrapped = wrap(model, channels)
        statistics = {key: value.clone() for key, value in wrapped.state_dict().items() if "running_" in key}
        is_frozen = {key: key[len(prefix) :].split(".")[0] in frozen for key in statistics}
        assert all(key.startswith(prefix) for key in statistics)
        assert sum(is_frozen.values()) == 2 * frozen_norms  # running_mean and running_var of each
        x = torch.randn(2, 3, SIZE, SIZE)
        for mode in (True, False):
            wrapped.train(mode)
            outputs = _outputs(wrapped(x))
            sum(out.square().mean() for out in outputs).backward()  # type: ignore[union-attr]
            after = wrapped.state_dict()
            for key, before in statistics.items():
                moved = not torch.equal(before, after[key])
                # In train mode every trained norm moves and no frozen one; in eval mode none moves.
                assert moved == (mode and not is_frozen[key]), f"{form} {key} train={mode}"
                statistics[key] = after[key].clone()
        for key, parameter in wrapped.named_parameters():
            if key.startswith(prefix) and key[len(prefix) :].split(".")[0] in frozen:
                assert not parameter.requires_grad and parameter.grad is None, f"{form} {key}"


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_frozen_part_computes_the_same_in_train_and_eval_mode(name: str) -> None:
    """Behind BackboneWithFPN's layer getter, layer1 of a frozen_stages=1 net gives its eval-mode
    output while the detector trains; the trained layer2 does not."""
    spec = with_backbone(load_spec(name, [f"input.size={SIZE}"]), frozen_stages=1)
    for model in _pair(spec):
        extractor = create_feature_extractor(model, ["layer1", "layer2"])
        x = torch.randn(2, 3, SIZE, SIZE)
        with torch.no_grad():
            trained = extractor.train()(x)
            evaluated = extractor.eval()(x)
        assert torch.equal(trained["layer1"], evaluated["layer1"])
        assert not torch.allclose(trained["layer2"], evaluated["layer2"])


FEATURE_CASES = [
    ("resnet18", {"features_only": True}),
    ("resnet50d", {"features_only": True, "out_indices": [1, 3, 4], "output_stride": 16}),
    ("resnetv2_50", {"features_only": True, "out_indices": [0, 2]}),
]


@pytest.mark.parametrize(("name", "options"), FEATURE_CASES)
def test_feature_info_is_timms_in_both_forms(name: str, options: dict[str, object]) -> None:
    spec = with_backbone(load_spec(name, ["input.size=64"]), **options)
    live = build(spec).feature_info
    emitted = emitted_model(spec).feature_info
    # timm's own class over the same dicts, every entry an output (as timm's features_only nets).
    timm_info = TimmFeatureInfo(copy.deepcopy(list(live)), tuple(range(len(live))))
    count = len(live)
    queries: list[tuple[str, tuple[object, ...]]] = [
        (method, args)
        for method in ("channels", "reduction", "module_name")
        for args in [(), (None,), (0,), (count - 1,), ([0, count - 1],), ((count - 1,),)]
    ]
    queries += [("get", ("num_chs",)), ("get", ("module", 0)), ("get_dicts", ()), ("get_dicts", (["num_chs"], 0))]
    queries += [("get_dicts", (["reduction", "module"],)), ("get_dicts", (None, [0]))]
    for method, args in queries:
        want = getattr(timm_info, method)(*args)
        assert getattr(live, method)(*args) == want, (method, args)
        assert getattr(emitted, method)(*args) == want, (method, args)
    assert len(emitted) == len(live) == len(timm_info)
    assert [emitted[i] for i in range(count)] == [live[i] for i in range(count)] == [timm_info[i] for i in range(count)]
    assert emitted == live and type(emitted).__name__ == "FeatureInfo"


def _quantized(model: nn.Module, calibration: torch.Tensor) -> nn.Module:
    prepared = prepare_fx(model.eval(), get_default_qconfig_mapping("x86"), (calibration,))
    with torch.no_grad():
        prepared(calibration)
    return convert_fx(prepared)


@pytest.mark.parametrize("name", ["resnet50d", "seresnet50", "resnetv2_50"])
def test_int8_live_and_emitted_are_equal(name: str) -> None:
    """The same modules in the same order: FX quantisation places and shares observers alike."""
    # Full depth: with fewer blocks the misplaced observers happened to give the same int8 outputs.
    spec = load_spec(name, ["input.size=64", "head.num_classes=10"])
    live, emitted = _pair(spec)
    # Only the plan's own placeholders (timm's avg_down pool at stride 1), nothing more.
    paths = {layer.path for layer in live.plan.layers}  # type: ignore[union-attr]
    for module in (live, emitted):
        assert all(n in paths for n, m in module.named_modules() if type(m) is nn.Identity)
    live_tree = [(n, type(m).__name__) for n, m in live.named_modules()]
    emitted_tree = [(n, type(m).__name__) for n, m in emitted.named_modules()]
    assert [n for n, _ in emitted_tree] == [n for n, _ in live_tree]
    torch.backends.quantized.engine = "x86"
    calibration = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        floats = live.eval()(x), emitted.eval()(x)
        assert torch.equal(*floats)
        ours, theirs = _quantized(live, calibration)(x), _quantized(emitted, calibration)(x)
    assert torch.equal(ours, theirs), f"max difference {(ours - theirs).abs().max().item()}"
    # Quantised, not merely passed through: close to the float model but not equal to it.
    assert not torch.equal(ours, floats[0])
    assert (ours - floats[0]).abs().max() < 0.5 * floats[0].abs().max()


@pytest.mark.parametrize("name", ["resnetblur18", "resnetv2_50d_evos", "resnetv2_50d_frn", "ecaresnet50d"])
def test_custom_modules_trace_and_quantise(name: str) -> None:
    """Blur pools, EvoNorm, FRN and ECA under create_feature_extractor (both modes) and FX int8
    quantisation, live and emitted alike."""
    depths = [f"stages[{index}].blocks=1" for index in range(4)]
    spec = load_spec(name, ["input.size=64", *depths])
    live, emitted = _pair(spec)
    torch.backends.quantized.engine = "x86"
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    results = []
    for model in (live, emitted):
        for mode in (True, False):
            extractor = create_feature_extractor(model.train(mode), ["layer1", "layer4"])
            assert extractor(x)["layer4"].shape[1] == model.num_features  # type: ignore[attr-defined]
        with torch.no_grad():
            results.append((_quantized(model, x)(x), model.eval()(x)))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])
    assert not torch.equal(results[0][0], results[0][1])
