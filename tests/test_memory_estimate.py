"""The training-memory estimate against torch's own accounting on CPU.

torch.profiler with ``profile_memory=True`` records every allocation and free of the CPU
allocator; summed in time order they give the bytes alive at each moment, so their maximum is the
step's peak above what was alive when profiling began (parameters, buffers, optimizer state and
the batch, which the test adds from the tensors themselves).

Two checks per network:
- the activations saved for backward equal, byte for byte, what a training-mode forward pass
  leaves alive besides its output (also for a network of each layer kind and activation, and
  for each decoder head);
- the estimated total bounds the measured peak of a whole step (zero_grad, forward, loss,
  backward, optimizer step) from above, by at most 25%. The estimate adds the gradients and the
  saved activations as if both were alive at once; torch frees each saved tensor as the backward
  pass reaches it while the gradients fill in, so the real peak is lower by part of the smaller
  of the two (2-21% on these nets, the most for the deep, thin pre-activation ResNet-164). The
  convolution kernels' own scratch buffers are left out of the measured peak (SCRATCH_OPS).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

import resnet_gen as rg
from resnet_gen.compile import compile_spec
from tests.test_heads import SMALL as DECODERS

# How far above the measured peak the estimate may be: it adds gradients and saved activations as
# if alive together, while torch frees the one as the other fills in (most for deep, thin nets).
MARGIN = 0.25

CASES = [
    # (spec, overrides, batch, optimizer): basic, bottleneck, pre-activation, squeeze-excite, frozen
    ("cifar_resnet20", {}, 16, "sgd"),
    ("cifar_resnet164_post", {f"stages[{i}].blocks": 2 for i in range(3)}, 8, "adamw"),
    ("cifar_resnet110_pre", {f"stages[{i}].blocks": 2 for i in range(3)}, 16, "sgd_momentum"),
    ("cifar_preact_resnet164", {f"stages[{i}].blocks": 1 for i in range(3)}, 8, "sgd"),
    ("seresnet18", {"input.size": 64}, 4, "sgd_momentum"),
    ("resnet50", {"input.size": 64}, 2, "adamw"),
    # frozen stem and first stage: no gradients there, and nothing saved before the first trainable layer
    ("resnet18", {"input.size": 64, "backbone.frozen_stages": 1}, 4, "sgd"),
    # decoder heads: U-Net (up-convs, crops, concatenations), FPN (resizes, sums), multitask (two outputs)
    ("resnet18_unet_seg", {"input.size": 64}, 2, "sgd"),
    ("resnet50_fpn_seg", {"input.size": 64}, 2, "adamw"),
    ("medical_resnet18_multitask", {"input.size": 64}, 4, "sgd_momentum"),
]


# The estimate leaves out the convolution kernels' scratch buffers: they depend on the library and
# the CPU (oneDNN's backward pass for a conv's weights holds about eight copies of their gradient
# on a CPU without AVX-512, next to nothing with it). Inside a convolution's backward pass only
# what it hands back counts towards the peak.
SCRATCH_OPS = ("aten::convolution_backward",)


def _peak(run: Callable[[], Any]) -> tuple[int, int]:
    """(peak, final) bytes alive above the start while ``run`` runs, from the profiler's memory
    events, the SCRATCH_OPS' own buffers left out of the peak."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    events = list(prof.profiler.kineto_results.events())
    memory = sorted((event for event in events if event.name() == "[memory]"), key=lambda event: event.start_ns())
    scratch = [
        (event.start_ns(), event.start_ns() + event.duration_ns()) for event in events if event.name() in SCRATCH_OPS
    ]
    live = peak = 0
    span = None
    for event in memory:
        was_in, span = span, next((i for i, (a, b) in enumerate(scratch) if a <= event.start_ns() <= b), None)
        if was_in is not None and span != was_in:
            peak = max(peak, live)  # what the op handed back
        live += event.nbytes()
        if span is None:
            peak = max(peak, live)
    return max(peak, live), live


def _bytes(tensors: Any) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _optimizer(name: str, params: Any) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=0.1)
    if name == "sgd_momentum":
        return torch.optim.SGD(params, lr=0.1, momentum=0.9)
    return torch.optim.AdamW(params, lr=1e-3)


def _bytes_out(output: Any) -> int:
    """Bytes of a network's output: a tensor, or a multitask net's (logits, mask)."""
    return _bytes(output if isinstance(output, tuple) else (output,))


def _setup(name: str, overrides: dict[str, Any], batch: int) -> tuple[rg.Report, nn.Module, torch.Tensor]:
    spec, plan = compile_spec(name, overrides)
    torch.manual_seed(0)
    model = rg.build(spec).train()
    x = torch.randn(batch, spec.input.channels, *spec.input.hw)
    return rg.analyze(plan), model, x


def _loss(report: rg.Report, x: torch.Tensor) -> Callable[[Any], torch.Tensor]:
    """A classifier's cross-entropy on labels, a mask's per pixel (binary for a one-class mask), or both."""
    plan = report.plan
    assert plan is not None
    batch, size = x.shape[0], x.shape[-2:]
    labels = torch.randint(0, plan.head.num_classes, (batch,)) if plan.head is not None else None
    classes = plan.decoder.num_classes if plan.decoder is not None else 0
    masks = torch.randint(0, max(classes, 2), (batch, *size))

    def mask_loss(mask: torch.Tensor) -> torch.Tensor:
        if classes > 1:
            return nn.functional.cross_entropy(mask, masks)
        return nn.functional.binary_cross_entropy_with_logits(mask.squeeze(1), masks.float())

    def loss(output: Any) -> torch.Tensor:
        if plan.decoder is None:
            return nn.functional.cross_entropy(output, labels)
        if labels is None:
            return mask_loss(output)
        return nn.functional.cross_entropy(output.logits, labels) + mask_loss(output.mask)

    return loss


@pytest.mark.parametrize(("name", "overrides", "batch", "optimizer"), CASES, ids=[case[0] for case in CASES])
def test_saved_activations_are_what_the_forward_pass_keeps(
    name: str, overrides: dict[str, Any], batch: int, optimizer: str
) -> None:
    report, model, x = _setup(name, overrides, batch)
    model(x)  # warm-up: lazily made state is not the forward pass's
    outputs: list[Any] = []
    _, kept = _peak(lambda: outputs.append(model(x)))
    assert kept - _bytes_out(outputs[0]) == report.memory(batch, "fp32", optimizer).activations


LAYER_KINDS = {
    **{act: ("cifar_resnet20", {"activation": act}) for act in ("silu", "gelu", "mish", "hardswish", "elu", "tanh")},
    "leaky_relu": ("cifar_resnet20", {"activation": "leaky_relu"}),
    "identity": ("cifar_resnet20", {"activation": "identity"}),
    "group_norm": ("resnet50_gn", {"input.size": 64}),
    "split_attention": ("resnest14d", {"input.size": 64}),
    "eca": ("ecaresnet26t", {"input.size": 64}),
    "blur_pool": ("resnetblur18", {"input.size": 64}),
    "std_conv": ("resnetv2_50x1_bit", {"input.size": 64}),
    "evonorm": ("resnetv2_50d_evos", {"input.size": 64}),
    "frn": ("resnetv2_50d_frn", {"input.size": 64}),
    "dropout": ("wrn16_8", {"head.dropout": 0.3}),
    "deep_stem_avg_down": ("resnet50d", {"input.size": 64}),
}


@pytest.mark.parametrize("kind", list(LAYER_KINDS))
def test_saved_activations_for_every_layer_kind(kind: str) -> None:
    name, overrides = LAYER_KINDS[kind]
    report, model, x = _setup(name, overrides, 2)
    model(x)
    outputs: list[Any] = []
    _, kept = _peak(lambda: outputs.append(model(x)))
    assert kept - _bytes_out(outputs[0]) == report.memory(2).activations


@pytest.mark.parametrize("case", list(DECODERS))
def test_saved_activations_for_every_decoder(case: str) -> None:
    """Decoders over several backbones at a size whose maps do not halve evenly (the U-Net's crops)."""
    name, *options = DECODERS[case]
    spec = rg.load_spec(name, [*options, "input.size=[37, 29]"])
    torch.manual_seed(0)
    model = rg.build(spec).train()
    x = torch.randn(2, spec.input.channels, *spec.input.hw)
    model(x)
    outputs: list[Any] = []
    _, kept = _peak(lambda: outputs.append(model(x)))
    assert kept - _bytes_out(outputs[0]) == rg.analyze(spec).memory(2).activations


@pytest.mark.parametrize(("name", "overrides", "batch", "optimizer"), CASES, ids=[case[0] for case in CASES])
def test_estimate_bounds_the_measured_peak(name: str, overrides: dict[str, Any], batch: int, optimizer: str) -> None:
    report, model, x = _setup(name, overrides, batch)
    opt = _optimizer(optimizer, model.parameters())
    loss = _loss(report, x)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss(model(x)).backward()
        opt.step()

    assert_bounds_the_peak(report.memory(batch, "fp32", optimizer), model, x, opt, step)


def assert_bounds_the_peak(
    estimate: Any, model: torch.nn.Module, x: torch.Tensor, opt: torch.optim.Optimizer, step: Any
) -> None:
    """What stays alive (parameters, buffers, optimizer state, input) is the estimate's, and the
    step's measured peak on top of it lies within MARGIN under the estimate's total."""
    step()  # the optimizer's state exists from the first step on
    opt.zero_grad(set_to_none=True)
    state = [t for s in opt.state.values() for t in s.values() if torch.is_tensor(t) and t.dim() > 0]
    alive = _bytes([*model.parameters(), *model.buffers(), *state, x])
    peak, _ = _peak(step)
    measured = alive + peak
    assert estimate.parameters + estimate.optimizer_state + estimate.input == pytest.approx(alive, rel=1e-3)
    assert (1 - MARGIN) * estimate.total <= measured <= estimate.total, (measured, estimate.rows())


def test_bf16_halves_every_item() -> None:
    report = rg.analyze("cifar_resnet20")
    full, half = report.memory(8, "fp32", "adamw"), report.memory(8, "bf16", "adamw")
    assert half.gradients * 2 == full.gradients and half.optimizer_state * 2 == full.optimizer_state
    assert half.parameters * 2 == full.parameters and half.input * 2 == full.input
    assert half.activations * 2 == full.activations and half.working * 2 == full.working


@pytest.mark.parametrize(("dtype", "torch_dtype"), [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_half_precision_saved_activations_match_torch(dtype: str, torch_dtype: torch.dtype) -> None:
    report, model, x = _setup("cifar_resnet20", {}, 8)
    model = model.to(torch_dtype)
    x = x.to(torch_dtype)
    model(x)
    outputs: list[torch.Tensor] = []
    _, kept = _peak(lambda: outputs.append(model(x)))
    assert kept - _bytes(outputs) == report.memory(8, dtype, "sgd").activations


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch": 0}, "batch must be a whole number of 1 or more, not 0"),
        ({"dtype": "fp64"}, "unknown dtype 'fp64'; choose one of fp32, bf16, fp16"),
        ({"optimizer": "lion"}, "unknown optimizer 'lion'; choose one of sgd, sgd_momentum, adamw"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rg.analyze("resnet18").memory(**options)
