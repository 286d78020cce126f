"""Small networks the analysis tests share: CIFAR nets cut down to a few blocks."""

from __future__ import annotations

from resnet_gen import Spec, load_spec


def blocks_per_stage(name: str, blocks: int, *extra: str) -> Spec:
    """Catalog spec ``name`` with ``blocks`` blocks in each of its three stages."""
    return load_spec(name, [f"stages[{i}].blocks={blocks}" for i in range(3)] + list(extra))


# Every block keeps 16 channels at full size: all shortcuts are identities.
ONE_WIDTH = [f"stages[{i}].{key}" for i in (1, 2) for key in ("width=16", "stride=1")]
