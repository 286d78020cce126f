"""Random valid specs (the language's main choices, as tests/test_properties.py draws them): the
plan's counts in every convention equal fvcore's and ptflops', and (for classifiers) the
estimate's saved activations equal what torch keeps after a training-mode forward pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from test_counting_conventions import _ours, _tool_counts
from test_memory_estimate import _bytes, _peak
from test_properties import PROFILE, _load_unless_too_small, _write, valid_specs

import resnet_gen as rg

# About two seconds an example (two fvcore traces, a ptflops run, a profiled forward pass).
COUNT_PROFILE = settings(PROFILE, max_examples=max(10, PROFILE.max_examples // 2))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("counting")


@COUNT_PROFILE
@given(data=valid_specs())
def test_random_specs_count_as_the_tools_do(data: dict[str, Any], workdir: Path) -> None:
    path = _write(workdir, "counted", data)
    spec = _load_unless_too_small(path)
    _, ours = _ours(str(path), {})
    assert _tool_counts(spec) == ours
    if spec.head is None:
        return  # the output is a feature map some layer may save itself: not separable from what is kept
    report = rg.analyze(spec)
    torch.manual_seed(0)
    model = rg.build(spec).train()
    x = torch.randn(2, spec.input.channels, *spec.input.hw)
    model(x)
    outputs: list[torch.Tensor] = []
    _, kept = _peak(lambda: outputs.append(model(x)))
    assert kept - _bytes(outputs) == report.memory(2).activations
