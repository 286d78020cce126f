"""Analyses of trained networks: lesions (Veit et al. 2016) and layer responses (He et al. 2015),
on a small residual net and its plain twin trained here on scikit-learn's 8x8 digits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from resnet_gen import lower
from resnet_gen.analyses.common import fresh_model, random_batch
from resnet_gen.analyses.lesion import lesion
from resnet_gen.analyses.responses import layer_responses
from resnet_gen.analyses.structure import block_sites, deleted_blocks, swapped_blocks
from resnet_gen.analyses.trained import error_rate, load_trained, read_split
from resnet_gen.cli import main
from resnet_gen.errors import SpecError
from resnet_gen.train import train
from tests.analyses_support import blocks_per_stage

DIGITS = ("input.size=8", "input.channels=1")


@pytest.fixture(scope="module")
def trained_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """A 6-block ResNet and its plain twin, three epochs on the digits (about 10 s of one core)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("runs")
    runs = {}
    for name in ("cifar_resnet20", "cifar_plain20"):
        spec = blocks_per_stage(name, 2, *DIGITS)
        train(spec, data="digits", recipe="digits", out=folder / name, epochs=3)
        runs[name] = folder / name / "last.ckpt"
    yield runs
    torch.set_num_threads(threads)


def test_deleting_blocks_whose_branches_are_zero_changes_nothing() -> None:
    for spec in (
        blocks_per_stage("cifar_resnet20", 2, "init.zero_init_residual=true"),
        blocks_per_stage("cifar_resnet20", 2, "init.zero_init_residual=true", "shortcut.type=projection"),
        blocks_per_stage("cifar_preact_resnet164", 1, "init.zero_init_residual=true"),
    ):
        plan = lower(spec)
        model = fresh_model(plan, 0).eval()
        images = random_batch(plan, 2, 0).images
        expected = model(images)
        with deleted_blocks(model, block_sites(plan)):
            assert torch.equal(model(images), expected)
        # The same deletion in a network whose branches are not zero does change it.
        other = fresh_model(lower(blocks_per_stage("cifar_resnet20", 2)), 0).eval()
        before = other(images)
        with deleted_blocks(other, block_sites(lower(blocks_per_stage("cifar_resnet20", 2)))):
            assert not torch.allclose(other(images), before)


def test_a_deleted_downsampling_block_keeps_its_zero_padded_shortcut() -> None:
    plan = lower(blocks_per_stage("cifar_resnet20", 1))
    model = fresh_model(plan, 0).eval()
    site = next(site for site in block_sites(plan) if site.path == "layer2.0")
    seen: dict[str, torch.Tensor] = {}
    block = model.get_submodule("layer2.0")
    handle = block.register_forward_hook(lambda module, args, out: seen.update(x=args[0], out=out))
    with deleted_blocks(model, [site]):
        model(random_batch(plan, 2, 0).images)
    handle.remove()
    # Option A by hand: every other pixel, 16 zero channels appended, then the block's ReLU.
    expected = F.pad(seen["x"][:, :, ::2, ::2], (0, 0, 0, 0, 0, 16)).relu()
    assert torch.equal(seen["out"], expected)


def test_a_plain_block_that_reshapes_cannot_be_deleted() -> None:
    plan = lower(blocks_per_stage("cifar_plain20", 1))
    model = fresh_model(plan, 0)
    site = next(site for site in block_sites(plan) if site.path == "layer3.0")
    message = r"layer3\.0: a plain block that changes the shape cannot be deleted"
    with pytest.raises(SpecError, match=message), deleted_blocks(model, [site]):
        pass


def test_swapping_blocks_runs_them_in_the_other_order_and_restores_them() -> None:
    plan = lower(blocks_per_stage("cifar_resnet20", 3))
    model = fresh_model(plan, 0).eval()
    sites = {site.path: site for site in block_sites(plan)}
    images = random_batch(plan, 2, 0).images
    expected = model(images)
    order: list[str] = []
    handles = [
        model.get_submodule(path).register_forward_pre_hook(lambda module, args, path=path: order.append(path))
        for path in ("layer1.1", "layer1.2")
    ]
    with swapped_blocks(model, [(sites["layer1.1"], sites["layer1.2"])]):
        swapped = model(images)
    assert order == ["layer1.2", "layer1.1"]  # the modules now sit in each other's place
    for handle in handles:
        handle.remove()
    assert not torch.allclose(swapped, expected)
    assert torch.equal(model(images), expected)


def test_deleting_a_block_hurts_a_residual_net_less_than_its_plain_twin(trained_pair: dict[str, Path]) -> None:
    results = {}
    for name, checkpoint in trained_pair.items():
        trained = load_trained(checkpoint)
        data = read_split(trained.data, trained.spec, normalize=trained.normalize)
        before = [p.detach().clone() for p in trained.model.parameters()]
        results[name] = lesion(trained.model, trained.plan, data, draws=2, seed=0)
        # The lesion leaves the network as it found it.
        assert all(torch.equal(a, b) for a, b in zip(before, trained.model.parameters(), strict=True))
        assert error_rate(trained.model, data) == results[name].baseline
    residual, plain = results["cifar_resnet20"], results["cifar_plain20"]
    assert residual.residual and not plain.residual
    assert residual.baseline < 0.2 and plain.baseline < 0.5
    assert len(residual.single) == 6  # every residual block can lose its branch
    assert [row.path for row in plain.single] == ["layer1.0", "layer1.1", "layer2.1", "layer3.1"]

    def mean_increase(result: object) -> float:
        rows = result.single  # type: ignore[attr-defined]
        return sum(row.error - result.baseline for row in rows) / len(rows)  # type: ignore[attr-defined]

    # Observed (3 epochs): the residual net loses ~20 points on average, the plain one ~75.
    assert mean_increase(residual) < 0.5 * mean_increase(plain)
    assert [group.k for group in residual.deletions] == list(range(1, 7))
    assert residual.deletions[-1].mean > residual.deletions[0].mean  # more deletions, more error
    # Same-shape blocks pair up within a stage: only layer1 has two (layer1.0 and layer1.1).
    assert [group.k for group in residual.swaps] == [1]


def test_layer_responses_are_the_std_of_each_norm_after_a_3x3_conv(trained_pair: dict[str, Path]) -> None:
    trained = load_trained(trained_pair["cifar_resnet20"])
    data = read_split("digits", trained.spec, batch=100, normalize=trained.normalize)
    result = layer_responses(trained.model, trained.plan, data)
    assert len(result.layers) == 12  # two 3x3 convs per basic block
    assert [layer.path for layer in result.layers[:2]] == ["layer1.0.bn1", "layer1.0.bn2"]
    # Reference: every output of one norm, gathered over the split, and torch's std.
    outputs: list[torch.Tensor] = []
    handle = trained.model.get_submodule("layer2.1.bn2").register_forward_hook(
        lambda module, args, out: outputs.append(out.detach())
    )
    with torch.no_grad():
        for batch in data.batches:
            trained.model(batch.images)
    handle.remove()
    expected = float(torch.cat(outputs).double().std())
    measured = next(layer.std for layer in result.layers if layer.path == "layer2.1.bn2")
    assert abs(measured - expected) < 1e-9 * expected
    assert result.images == 360


def test_cli_lesion_and_responses_write_the_same_files_twice(
    trained_pair: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    residual, plain = str(trained_pair["cifar_resnet20"]), str(trained_pair["cifar_plain20"])
    for run in ("a", "b"):
        main(["analyze", "lesion", residual, plain, "--draws", "1", "--images", "120", "-o", str(tmp_path / run)])
        spec_args = ["cifar_resnet20", residual, "cifar_plain20", plain]
        overrides = [item for i in range(3) for item in ("--set", f"stages[{i}].blocks=2")]
        overrides += ["--set", "input.size=8", "--set", "input.channels=1"]
        main(["analyze", "responses", *spec_args, *overrides, "--images", "100", "-o", str(tmp_path / run)])
    out = capsys.readouterr().out
    assert "cifar_resnet20" in out and "one block deleted" in out and "3x3 layers" in out
    names = sorted(path.name for path in (tmp_path / "a").iterdir())
    # lesion reads each checkpoint's own spec; responses takes --set, and names the nets as overridden
    assert names == sorted(
        [f"lesion-cifar_resnet20-cifar_plain20.{ext}" for ext in ("csv", "json", "png", "svg")]
        + [f"responses-cifar_resnet20_custom-cifar_plain20_custom.{ext}" for ext in ("csv", "json", "png", "svg")]
    )
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_a_checkpoint_of_another_spec_is_a_one_line_error(
    trained_pair: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["analyze", "responses", "cifar_resnet56", str(trained_pair["cifar_resnet20"]), "-o", str(tmp_path)])
    assert exit.value.code == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0
    assert "a checkpoint of cifar_resnet20, whose weights do not fit cifar_resnet56" in error
    assert not list(tmp_path.iterdir())


def test_bad_checkpoint_and_missing_data_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["analyze", "lesion", str(tmp_path / "nothing.ckpt"), "-o", str(tmp_path / "out")])
    assert exit.value.code == 1
    assert "nothing.ckpt: no such checkpoint file" in capsys.readouterr().err
    with pytest.raises(SpecError, match="no data: give --data"):
        read_split(None, blocks_per_stage("cifar_resnet20", 1))
    with pytest.raises(SystemExit) as exit:
        main(["analyze", "responses", "cifar_resnet20"])
    assert exit.value.code == 2
    assert not (tmp_path / "out").exists()


def test_gradients_and_paths_probe_a_trained_checkpoint_on_real_images(
    trained_pair: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = str(trained_pair["cifar_resnet20"])
    fitted = [item for i in range(3) for item in ("--set", f"stages[{i}].blocks=2")]
    fitted += ["--set", "input.size=8", "--set", "input.channels=1"]
    probe = ["--checkpoint", checkpoint, "--data", "digits", "--batch", "8", "-o", str(tmp_path)]
    main(["analyze", "gradients", "cifar_resnet20", *fitted, *probe, "--seeds", "1", "--points", "0"])
    main(["analyze", "paths", "cifar_resnet20", *fitted, *probe, "--samples", "1"])
    assert "6 residual blocks, 64 paths" in capsys.readouterr().out
    import json

    trained = json.loads((tmp_path / "gradients-cifar_resnet20_custom.json").read_text())[0]
    assert trained["data"] == "digits" and trained["batch"] == 8
    # The same measurement by hand: the trained weights, the first 8 training digits.
    loaded = load_trained(checkpoint)
    batch = read_split("digits", loaded.spec, split="train", batch=8, limit=8, normalize=loaded.normalize).batches[0]
    from resnet_gen.analyses.gradients import block_input_gradients

    loaded.model.train()
    expected = block_input_gradients(loaded.model, loaded.plan, batch)
    measured = {row["path"]: row["norms"][0] for row in trained["blocks"]}
    assert measured == pytest.approx(expected, rel=1e-5)


def test_a_limited_split_is_the_first_images_or_a_seeded_subset() -> None:
    spec = blocks_per_stage("cifar_resnet20", 1, *DIGITS)
    whole = read_split("digits", spec, batch=500)
    first = read_split("digits", spec, batch=7, limit=20)
    drawn = read_split("digits", spec, batch=7, limit=20, seed=3)
    assert (whole.count, first.count, drawn.count) == (360, 20, 20)
    all_labels = torch.cat([b.labels for b in whole.batches])
    assert torch.equal(torch.cat([b.labels for b in first.batches]), all_labels[:20])
    again = read_split("digits", spec, batch=20, limit=20, seed=3)
    assert torch.equal(torch.cat([b.images for b in drawn.batches]), again.batches[0].images)
    assert not torch.equal(again.batches[0].images, torch.cat([b.images for b in first.batches]))
