"""Paths through residual networks (Veit et al. 2016): the counts are the binomial coefficients
(Pascal's triangle, built here), and the gradients of all 2^n routed backward passes add up to
the full gradient."""

from __future__ import annotations

import itertools
import subprocess
import sys

import torch
import torch.nn.functional as F

from resnet_gen import load_spec, lower
from resnet_gen.analyses.common import fresh_model, random_batch
from resnet_gen.analyses.path_gradients import path_gradients, routed_input_gradient
from resnet_gen.analyses.paths import path_lengths
from resnet_gen.analyses.structure import block_sites
from tests.analyses_support import blocks_per_stage
from tests.conftest import ROOT


def pascal_row(n: int) -> list[int]:
    row = [1]
    for _ in range(n):
        row = [a + b for a, b in zip([0, *row], [*row, 0], strict=True)]
    return row


def test_path_counts_are_the_binomial_coefficients() -> None:
    for spec, n in (
        (blocks_per_stage("cifar_resnet20", 1), 3),
        (load_spec("cifar_resnet20"), 9),
        (load_spec("cifar_resnet110"), 54),
    ):
        lengths = path_lengths(spec)
        assert lengths.residual_blocks == n
        assert list(lengths.counts) == pascal_row(n)
        assert lengths.total == 2**n
        assert lengths.lengths == tuple(range(n + 1))


def test_path_counts_by_enumerating_every_route_for_nine_blocks() -> None:
    counts = [0] * 10
    for route in itertools.product((0, 1), repeat=9):
        counts[sum(route)] += 1
    assert list(path_lengths(load_spec("cifar_resnet20")).counts) == counts


def test_a_plain_net_has_one_path_through_every_block() -> None:
    lengths = path_lengths(load_spec("cifar_plain56"))
    assert (lengths.residual_blocks, lengths.plain_blocks, lengths.counts, lengths.lengths) == (0, 27, (1,), (27,))
    assert lengths.typical == (27, 27)


def test_typical_lengths_hold_95_percent_of_resnet110_paths() -> None:
    lengths = path_lengths(load_spec("cifar_resnet110"))
    low, high = lengths.typical
    assert sum(lengths.counts[low : high + 1]) >= 0.95 * 2**54
    # Veit et al.: "most paths ... between 19 and 35 modules deep" for the 54 blocks of ResNet-110.
    assert 18 <= low <= 21 and 33 <= high <= 36


def test_routed_gradients_add_up_to_the_full_gradient() -> None:
    # Post-activation with zero-padded and projection shortcuts, and pre-activation bottlenecks
    # whose projections read the normalised input.
    for spec in (
        blocks_per_stage("cifar_resnet20", 1),
        blocks_per_stage("cifar_resnet20", 1, "shortcut.type=projection"),
        blocks_per_stage("cifar_preact_resnet164", 1),
    ):
        plan = lower(spec)
        sites = block_sites(plan)
        model = fresh_model(plan, 0)
        model.train()
        batch = random_batch(plan, 3, 0)
        images = batch.images.clone().requires_grad_(True)
        F.cross_entropy(model(images), batch.labels).backward()
        assert images.grad is not None
        total = torch.zeros_like(images)
        single_paths = []
        for route in itertools.product((False, True), repeat=len(sites)):
            chosen = {site.path for site, through in zip(sites, route, strict=True) if through}
            gradient = routed_input_gradient(model, sites, batch, chosen)
            single_paths.append(gradient)
            total += gradient
        torch.testing.assert_close(total, images.grad, rtol=1e-4, atol=1e-7)
        # Each route is its own part of the gradient, none of them the whole.
        assert all(not torch.allclose(part, images.grad) for part in single_paths)


def test_routes_leave_the_forward_pass_unchanged() -> None:
    plan = lower(blocks_per_stage("cifar_resnet20", 2))
    model = fresh_model(plan, 1)
    model.eval()
    batch = random_batch(plan, 2, 1)
    from resnet_gen.analyses.structure import gradient_routes

    expected = model(batch.images)
    sites = block_sites(plan)
    with gradient_routes(model, sites, {sites[0].path, sites[3].path}):
        routed = model(batch.images)
    assert torch.equal(routed, expected)
    assert torch.equal(model(batch.images), expected)  # the hooks are gone


def test_path_gradients_sample_each_length() -> None:
    spec = blocks_per_stage("cifar_resnet20", 2)
    result = path_gradients(spec, samples=2, batch=2)
    assert [row.length for row in result.per_length] == list(range(7))
    assert [row.paths for row in result.per_length] == pascal_row(6)
    assert all(len(row.norms) == 2 and row.mean > 0 for row in result.per_length)
    low, high = result.effective
    assert 0 <= low <= high <= 6


def test_the_analyses_package_and_counting_paths_need_no_torch(tmp_path: object) -> None:
    code = (
        "import sys\nimport resnet_gen.analyses\nfrom resnet_gen.cli import main\n"
        f"try:\n    main(['analyze', 'paths', 'cifar_resnet56', '--samples', '0', '-o', {str(tmp_path)!r}])\n"
        "except SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "assert 'torch' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "27 residual blocks, 134,217,728 paths" in result.stdout
