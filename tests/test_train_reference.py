"""The trainer against the seed document's training loop written out plainly.

With the imagenet recipe (SGD lr 0.1, momentum 0.9, weight decay 1e-4, StepLR, cross-entropy),
augmentation off and the same data order, 20 steps of ``rg.train`` give bit-identical weights
to the hand-written loop, for a resnet18 and a CIFAR net; the schedule's epoch steps fall inside
the 20 steps (step_size=1 epoch, 8 batches an epoch).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from train_support import DIGITS_NET, SMALL_RESNET18

import resnet_gen as rg
from resnet_gen.data import open_dataset

STEPS = 20
BATCH = 8
SEED = 3


def reference_loop(model: nn.Module, dataset: torch.utils.data.Dataset, steps: int) -> None:
    """The seed's train_resnet, with its data order spelled out: epoch e visits
    torch.randperm(n) drawn from a generator seeded with seed + e, in batches of BATCH."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.1)
    criterion = nn.CrossEntropyLoss()
    done = 0
    epoch = 0
    while done < steps:
        model.train()
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(SEED + epoch)).tolist()
        for start in range(0, len(order), BATCH):
            batch = [dataset[i] for i in order[start : start + BATCH]]
            data = torch.stack([image for image, _ in batch])
            target = torch.tensor([label for _, label in batch])
            optimizer.zero_grad()
            output = model(data)
            loss = criterion(output, target)
            loss.backward()
            optimizer.step()
            done += 1
            if done == steps:
                return
        scheduler.step()
        epoch += 1


@pytest.mark.parametrize(
    ("name", "overrides", "source"),
    # synthetic:64 is 8 batches an epoch, so the 20 steps cross two epoch ends of the schedule;
    # on digits (180 batches an epoch) they stay inside the first epoch, on real images.
    [("resnet18", SMALL_RESNET18, "synthetic:64"), ("cifar_resnet20", DIGITS_NET, "digits")],
)
def test_trainer_matches_the_plain_loop(name: str, overrides: list[str], source: str, tmp_path: Path) -> None:
    spec = rg.load_spec(name, overrides)
    changes = {
        "batch_size": BATCH,
        "seed": SEED,
        "schedule.step_size": 1,
        "augment.type": "none",
        "normalize": "dataset",
    }
    result = rg.train(
        spec, data=source, recipe="imagenet", out=tmp_path, overrides=changes, max_steps=STEPS, validate=False
    )
    assert result["global_step"] == STEPS
    trained = rg.train.load_checkpoint(tmp_path / "last.ckpt").model

    torch.manual_seed(SEED)  # the trainer seeds torch with the recipe's seed, then builds
    model = rg.build(spec)
    dataset = open_dataset(source, "train", size=spec.input.hw, normalize="dataset", num_classes=10, seed=SEED)
    reference_loop(model, dataset, STEPS)
    expected = model.state_dict()
    assert trained.keys() == expected.keys()
    changed = [
        key for key, value in expected.items() if value.is_floating_point() and not torch.equal(value, trained[key])
    ]
    assert not changed, changed[:5]
    assert all(torch.equal(trained[key], value) for key, value in expected.items())
