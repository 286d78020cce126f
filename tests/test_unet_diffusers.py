"""Parity of the diffusion U-Nets with Hugging Face diffusers' ``UNet2DModel`` built from the same
configuration (a config dict written out here, as the checkpoints' config.json give it; nothing
is downloaded): exact parameter counts, state_dicts that load strictly both ways (the same key
layout), equal float64 outputs for random ``(x, t)`` in eval mode and equal gradients (DDPM
CIFAR-10's at a 16x16 sample, every weight's on the small configs). The 256x256
layout is checked by counts and one float32 forward at a reduced sample size. MACs are checked
against fvcore's count of the same operators the report counts."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from diffusers import UNet2DModel
from diffusers.models.downsampling import Downsample2D
from torch_helpers import randomize

from resnet_gen.runtime.diffusion import Downsample
from resnet_gen.unet import build_unet, load_unet_and_plan

# google/ddpm-cifar10-32's config.json (Ho et al. 2020, converted by diffusers).
DDPM_CIFAR10: dict[str, Any] = {
    "act_fn": "silu",
    "attention_head_dim": None,
    "block_out_channels": [128, 256, 256, 256],
    "center_input_sample": False,
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"],
    "downsample_padding": 0,
    "flip_sin_to_cos": False,
    "freq_shift": 1,
    "in_channels": 3,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-06,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 32,
    "time_embedding_type": "positional",
    "up_block_types": ["UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
}
# google/ddpm-church-256's config.json (ddpm-bedroom-256 and ddpm-cat-256 have the same layout).
DDPM_256: dict[str, Any] = {
    **DDPM_CIFAR10,
    "block_out_channels": [128, 128, 256, 256, 512, 512],
    "down_block_types": ["DownBlock2D", "DownBlock2D", "DownBlock2D", "DownBlock2D", "AttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D"],
    "sample_size": 256,
}
# The small config of the fast tests (specs/unet_tiny.yaml): diffusers' defaults otherwise.
TINY: dict[str, Any] = {
    "sample_size": 16,
    "block_out_channels": [32, 64],
    "layers_per_block": 1,
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D"],
    "up_block_types": ["AttnUpBlock2D", "UpBlock2D"],
    "norm_num_groups": 8,
    "attention_head_dim": None,
}
# Variants of the small config, as the same change to both: --set items for ours, keys for theirs.
VARIANTS: dict[str, tuple[list[str], dict[str, Any]]] = {
    "plain": ([], {}),
    "scale_shift": (["unet.time_injection=scale_shift"], {"resnet_time_scale_shift": "scale_shift"}),
    "four_heads": (["unet.attention_head_dim=16"], {"attention_head_dim": 16}),
    "ddpm_embedding": (
        ["unet.time_embedding.flip_sin_to_cos=false", "unet.time_embedding.freq_shift=1", "unet.norm.eps=1e-6"],
        {"flip_sin_to_cos": False, "freq_shift": 1, "norm_eps": 1e-6},
    ),
    "tf_padding_three_stages": (
        [
            "unet.block_out_channels=[16, 32, 32]",
            "unet.layers_per_block=2",
            "unet.attention_resolutions=[8, 4]",
            "unet.downsample.padding=0",
        ],
        {
            "block_out_channels": [16, 32, 32],
            "layers_per_block": 2,
            "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"],
            "up_block_types": ["AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
            "downsample_padding": 0,
        },
    ),
    "wider_time_mlp_relu_no_mid_attention": (
        ["unet.time_embedding.dim=96", "unet.activation=relu", "unet.mid_attention=false", "unet.out_channels=1"],
        {"time_embedding_dim": 96, "act_fn": "relu", "add_attention": False, "out_channels": 1},
    ),
}


def _pair(
    spec_name: str,
    config: dict[str, Any],
    overrides: list[str] | None = None,
    *,
    randomized: bool = True,
    dtype: torch.dtype = torch.float64,
) -> tuple[Any, Any, Any]:
    """(our plan, our module, diffusers' module holding our weights), both in eval mode and
    ``dtype``. ``randomized``: norm scales and biases moved away from 1 and 0, so that every
    parameter shows in the outputs. Theirs is built without storage and takes our tensors by a
    strict load (every key and shape must match): one set of weights, not two."""
    _, plan = load_unet_and_plan(spec_name, overrides or None)
    ours = build_unet(plan)
    if randomized:
        randomize(ours)
    ours.to(dtype).eval()
    with torch.device("meta"):
        theirs = UNet2DModel(**config)
    theirs.load_state_dict(ours.state_dict(), strict=True, assign=True)
    return plan, ours, theirs.eval()


def _count(module: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_small_config_matches_diffusers_in_float64(variant: str) -> None:
    items, changes = VARIANTS[variant]
    plan, ours, theirs = _pair("unet_tiny", {**TINY, **changes}, items)
    assert plan.params == _count(ours) == _count(theirs)
    # The same keys; ours in the order each block runs its modules (a scale-shift block's norm2
    # before its time projection, which diffusers registers first).
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict(), strict=True)
    torch.manual_seed(1)
    x = torch.randn(3, 3, 16, 16, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0, 17, 999])
    mine = ours(x, t)
    reference = theirs(x, t).sample
    torch.testing.assert_close(mine, reference, rtol=0, atol=1e-10)
    weights = torch.randn_like(mine)
    mine_grads = _gradients(ours, x, (mine * weights).sum())
    reference_grads = _gradients(theirs, x, (reference * weights).sum())
    assert mine_grads.keys() == reference_grads.keys()
    for name, gradient in mine_grads.items():
        torch.testing.assert_close(gradient, reference_grads[name], rtol=0, atol=1e-9, msg=name)


def _gradients(model: torch.nn.Module, x: torch.Tensor, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    """The loss's gradient with respect to the input and every parameter, by name."""
    names, parameters = zip(*model.named_parameters(), strict=True)
    found = torch.autograd.grad(loss, [x, *parameters])
    return dict(zip(("input", *names), found, strict=True))


def test_timesteps_as_int_float_and_tensors() -> None:
    """An int and a tensor of shape () or (N,) mean what they mean to diffusers; a Python float
    stays fractional (diffusers truncates it to an integer), equal to a float tensor of it."""
    _, ours, theirs = _pair("unet_tiny", TINY)
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        for t in (7, torch.tensor(7), torch.tensor([7, 7])):
            torch.testing.assert_close(ours(x, t), theirs(x, t).sample, rtol=0, atol=1e-10)
        fractional = ours(x, 7.5)
        torch.testing.assert_close(fractional, ours(x, torch.tensor([7.5, 7.5])), rtol=0, atol=0)
        assert not torch.allclose(fractional, ours(x, 7))
        with pytest.raises(ValueError, match="shape"):
            ours(x, torch.tensor([1, 2, 3]))


def test_dropout_is_applied_in_training_only() -> None:
    _, plan = load_unet_and_plan("unet_tiny", ["unet.dropout=0.5"])
    model = build_unet(plan).double()
    x = torch.randn(1, 3, 16, 16, dtype=torch.float64)
    model.eval()
    assert torch.equal(model(x, 3), model(x, 3))
    model.train()
    assert not torch.equal(model(x, 3), model(x, 3))


def test_average_pool_down_sampler_is_diffusers_downsample2d_without_conv() -> None:
    """diffusers' UNet2DModel always down-samples by conv; its Downsample2D(use_conv=False) is the
    reference of ``downsample: avg``."""
    _, plan = load_unet_and_plan("unet_tiny", ["unet.downsample=avg"])
    model = build_unet(plan)
    x = torch.randn(2, 32, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(Downsample(32, conv=False)(x), Downsample2D(32, use_conv=False)(x), rtol=0, atol=0)
    assert plan.params == _count(model) == _count(UNet2DModel(**TINY)) - (32 * 32 * 9 + 32)
    assert model(torch.randn(1, 3, 16, 16), 5).shape == (1, 3, 16, 16)


def test_three_by_three_shortcut_counts_and_runs() -> None:
    """diffusers' ResnetBlock2D always projects by 1x1; a 3x3 projection adds 8 weights per pair."""
    _, plan = load_unet_and_plan("unet_tiny", ["unet.shortcut_kernel=3"])
    model = build_unet(plan)
    pairs = sum(
        block.in_channels * block.out_channels for stage in plan.stages for block in stage.resnets if block.shortcut
    )
    assert plan.params == _count(model) == _count(UNet2DModel(**TINY)) + 8 * pairs
    assert model(torch.randn(1, 3, 16, 16), 5).shape == (1, 3, 16, 16)


def test_ddpm_cifar10_matches_diffusers_in_float64() -> None:
    """The float64 comparison runs a 16x16 sample: the same layers and weights as at 32x32 (neither
    network's forward reads the sample size), with four positions left at the lowest stage for the
    middle's attention; the shipped 32x32 is held to the live module in test_unet_emit.py."""
    plan, ours, theirs = _pair("ddpm_cifar10", DDPM_CIFAR10)
    assert plan.params == _count(ours) == _count(theirs) == 35_746_307
    # The same keys; ours in the order each block runs its modules (a scale-shift block's norm2
    # before its time projection, which diffusers registers first).
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(1, 3, 16, 16, dtype=torch.float64, requires_grad=True)
    mine = ours(x, 421)
    reference = theirs(x, 421).sample
    torch.testing.assert_close(mine, reference, rtol=0, atol=1e-10)
    # The input's gradient runs back through every layer; the small configs compare every weight's.
    (mine_grad,) = torch.autograd.grad(mine.square().sum(), x)
    (reference_grad,) = torch.autograd.grad(reference.square().sum(), x)
    torch.testing.assert_close(mine_grad, reference_grad, rtol=0, atol=1e-9)


def test_ddpm_256_counts_and_one_float32_forward() -> None:
    """The 256x256 layout: exact parameter count and strict loads at full size; one float32 forward
    at 64x64 (the same weights; 256x256 would take minutes on a CPU), equal to diffusers'."""
    # 113M parameters: PyTorch's initialisation as built, in float32.
    plan, ours, theirs = _pair("ddpm_church_256", DDPM_256, randomized=False, dtype=torch.float32)
    assert plan.params == _count(ours) == _count(theirs)
    # The same keys; ours in the order each block runs its modules (a scale-shift block's norm2
    # before its time projection, which diffusers registers first).
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x, 10), theirs(x, 10).sample, rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")  # fvcore's tracer, not ours
@pytest.mark.parametrize("name", ["unet_tiny", "ddpm_cifar10"])
def test_macs_equal_fvcore_count_of_conv_linear_and_matmul(name: str) -> None:
    """fvcore counts one per multiply-accumulate of conv, linear and matmul (attention's QK^T and
    weights @ V), which is the report's convention; its norm and upsampling counts are left out,
    as the report leaves them out."""
    from fvcore.nn import FlopCountAnalysis

    _, plan = load_unet_and_plan(name)
    model = build_unet(plan).eval()
    height, width = plan.size
    analysis = FlopCountAnalysis(model, (torch.randn(1, plan.in_channels, height, width), torch.tensor([3])))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    by_operator = analysis.by_operator()
    counted = sum(by_operator.get(op, 0) for op in ("conv", "linear", "matmul", "bmm"))
    assert counted == plan.macs


def test_non_square_sample_matches_diffusers() -> None:
    plan, ours, theirs = _pair("unet_tiny", {**TINY, "sample_size": (16, 32)}, ["input.size=[16, 32]"])
    assert plan.size == (16, 32) and plan.down[1].size == (8, 16)
    x = torch.randn(2, 3, 16, 32, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x, 9), theirs(x, 9).sample, rtol=0, atol=1e-10)
