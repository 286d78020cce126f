"""Every shipped spec: the plan's numbers equal torch's count of the built module."""

from __future__ import annotations

import pytest
import torch

import resnet_gen as rg
from resnet_gen.unet import build_unet, load_unet_and_plan
from resnet_gen.unet.report import unet_report
from tests.conftest import ALL_SPECS, CLASSIFIER_SPECS, UNET_SPECS, solved_at_run_time
from tests.torch_helpers import count_macs, count_params


@pytest.mark.parametrize("name", CLASSIFIER_SPECS)
def test_plan_counts_equal_torch_counts(name: str) -> None:
    spec = rg.load_spec(name)
    report = rg.analyze(spec)
    if solved_at_run_time(name):
        _check_run_time_steps(spec, report)
        return
    # The meta device runs shapes only: exact counts for big nets in milliseconds.
    with torch.device("meta"):
        model = rg.build(spec)
    assert count_params(model) == report.params
    assert count_macs(model, spec.input.channels, spec.input.hw) == report.macs
    assert sum(row.params for row in report.rows) == report.params
    assert sum(row.macs for row in report.rows) == report.macs


def _check_run_time_steps(spec: rg.Spec, report: rg.Report) -> None:
    """An adaptive ODE solver picks its steps from the tensors (the meta device has none): on
    real tensors torch counts the report's MACs with each solved block's one evaluation taken
    ``nfe`` times, ``nfe`` the evaluations its module reports after the forward."""
    plan = rg.lower(spec)
    model = rg.build(plan)
    assert count_params(model) == report.params
    counted = count_macs(model, spec.input.channels, spec.input.hw)
    solved = [layer for layer in plan.layers if getattr(layer, "evaluations", 0) is None]
    assert solved
    more = sum((model.get_submodule(layer.path).nfe - 1) * layer.macs for layer in solved)
    assert counted == report.macs + more
    assert sum(row.params for row in report.rows) == report.params
    assert sum(row.macs for row in report.rows) == report.macs


@pytest.mark.parametrize("name", UNET_SPECS)
def test_unet_plan_counts_equal_torch_counts(name: str) -> None:
    """torch's flop counter sees the report's convention: convs, linears and the attention's two
    matrix products (the MACs of the timestep MLP and projections at batch 1)."""
    _, plan = load_unet_and_plan(name)
    report = unet_report(plan)
    with torch.device("meta"):
        model = build_unet(plan)
    assert count_params(model) == report.params
    assert count_macs(model, plan.in_channels, plan.size, timestep=True) == report.macs
    assert sum(row.params for row in report.rows) == report.params
    assert sum(row.macs for row in report.rows) == report.macs


@pytest.mark.parametrize("name", ALL_SPECS)
def test_reference_numbers_hold(name: str) -> None:
    from resnet_gen.layout_dispatch import load_with_report

    spec, report = load_with_report(name)
    if spec.reference is None:
        pytest.fail(f"{name} ships without a reference block")
    if spec.reference.params is not None:
        assert report.params == spec.reference.params
    if spec.reference.gmacs is not None:
        digits = len(repr(spec.reference.gmacs).partition(".")[2])
        assert round(report.macs / 1e9, digits) == pytest.approx(spec.reference.gmacs, abs=1e-12)
