"""Gradient flow at initialisation, against a reference loop written out here and against what
the papers report: deep plain nets with batch norm explode the gradient towards the input
(Balduzzi et al. 2017; here plain-56 grows it about 10^4 times from the last block to the first,
ResNet-56 about 35 times), identity blocks pass it on unchanged, and gradients shatter with depth
in plain nets but not in residual ones."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from resnet_gen import load_spec, lower
from resnet_gen.analyses.common import Batch, fresh_model, random_batch
from resnet_gen.analyses.gradients import gradient_flow
from resnet_gen.analyses.shattered import neighbour_similarity, shattered_gradients
from tests.analyses_support import ONE_WIDTH, blocks_per_stage


def reference_block_gradients(spec_name: str, seed: int, batch: Batch) -> list[float]:
    """The gradient norm at each block input, by running stem, blocks and classifier one by one."""
    plan = lower(load_spec(spec_name))
    model = fresh_model(plan, seed)
    model.train()
    x = batch.images
    for layer in plan.stem:
        x = model.get_submodule(layer.path)(x)
    inputs = []
    for block in plan.blocks:
        x.retain_grad()
        inputs.append(x)
        x = model.get_submodule(block.path)(x)
    assert plan.head is not None and plan.head.fc is not None
    logits = model.get_submodule(plan.head.fc.path)(x.mean((2, 3)))
    F.cross_entropy(logits, batch.labels).backward()
    return [float(tensor.grad.norm()) for tensor in inputs]  # type: ignore[union-attr]


def test_block_gradients_equal_a_layer_by_layer_reference() -> None:
    plan = lower(load_spec("cifar_resnet20"))
    flow = gradient_flow(plan, seeds=(3,), batch=4)
    expected = reference_block_gradients("cifar_resnet20", 3, random_batch(plan, 4, 3))
    measured = [row.norms[0] for row in flow.blocks]
    torch.testing.assert_close(torch.tensor(measured), torch.tensor(expected), rtol=1e-5, atol=0)
    assert [row.path for row in flow.stages] == ["layer1", "layer2", "layer3"]
    assert [row.norms for row in flow.stages] == [flow.blocks[i].norms for i in (0, 3, 6)]


def test_plain56_explodes_the_gradient_towards_the_input_resnet56_does_not() -> None:
    plain = gradient_flow(load_spec("cifar_plain56"), seeds=(0,), batch=8)
    residual = gradient_flow(load_spec("cifar_resnet56"), seeds=(0,), batch=8)
    # Observed (batch 8, seeds 0 and 1): plain-56 about 1.3e4, ResNet-56 about 35.
    assert plain.first_to_last > 1e3
    assert residual.first_to_last < 1e2
    # At the first block the plain net's gradient is hundreds of times its twin's (observed ~460).
    assert plain.blocks[0].mean > 50 * residual.blocks[0].mean
    # Both nets end alike: the classifier sees the same kind of features.
    assert 0.2 < plain.blocks[-1].mean / residual.blocks[-1].mean < 5


def test_identity_blocks_pass_the_gradient_on_unchanged() -> None:
    # The bottleneck net's first block projects 16 to 64 channels; the others are identities.
    for name, first_identity in (("cifar_resnet20", 0), ("cifar_preact_resnet164", 1)):
        spec = blocks_per_stage(name, 2, "init.zero_init_residual=true", *ONE_WIDTH)
        flow = gradient_flow(spec, seeds=(0, 1), batch=2)
        assert len(flow.blocks) == 6
        for row in flow.blocks[first_identity:]:
            assert row.norms == flow.blocks[first_identity].norms, (name, row.path)
        # Without the zeroed branches the same net changes the gradient from block to block.
        trained_like = gradient_flow(blocks_per_stage(name, 2, *ONE_WIDTH), seeds=(0,), batch=2)
        assert len({row.norms for row in trained_like.blocks[first_identity:]}) == 6 - first_identity


def test_seeds_give_their_own_network_and_batch() -> None:
    flow = gradient_flow(blocks_per_stage("cifar_resnet20", 1), seeds=(0, 1, 2), batch=2)
    assert len(set(flow.blocks[0].norms)) == 3
    again = gradient_flow(blocks_per_stage("cifar_resnet20", 1), seeds=(0, 1, 2), batch=2)
    assert again == flow
    row = flow.blocks[0]
    assert row.low <= row.mean <= row.high


def test_neighbour_similarity_is_the_mean_cosine_of_consecutive_rows() -> None:
    rows = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, -1.0]])
    expected = (2**-0.5 + 2**-0.5 - 1.0) / 3
    assert abs(neighbour_similarity(rows) - expected) < 1e-6


def test_gradients_shatter_with_depth_in_a_plain_net_not_in_its_residual_twin() -> None:
    plain = shattered_gradients(load_spec("cifar_plain20"), seeds=(0,), points=12)
    residual = shattered_gradients(load_spec("cifar_resnet20"), seeds=(0,), points=12)
    # Observed (16 points, seeds 0 and 1): both ~0.93 after the first block; after the ninth,
    # plain-20 ~0.10, ResNet-20 ~0.63.
    assert plain.depths[0].mean > 0.8 and residual.depths[0].mean > 0.8
    assert plain.depths[-1].mean < 0.3
    assert residual.depths[-1].mean > 0.45
    assert [row.depth for row in plain.depths] == list(range(1, 10))
