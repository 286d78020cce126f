"""Where the analyses touch a live network: blocks, residual branches and shortcuts are found in
the plan, and changed through hooks at the plan's module paths, never through the modules' own
attributes (so the analyses follow any block implementation that keeps the plan's layout).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import SpecError
from ..plan import BlockPlan, Plan

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.utils.hooks import RemovableHandle


@dataclass(frozen=True)
class BlockSite:
    """One block as the analyses see it: where it is, and where its two paths start and end."""

    path: str  # layer3.4
    stage: int  # 0-based stage number (StagePlan.index)
    index: int  # within the stage
    residual: bool  # has a shortcut (identity, projection, zero-pad, ...)
    reshapes: bool  # changes channels or size: in a plain net it cannot be replaced by its input
    branch_entry: str  # the first module to read the block's input on the residual path
    branch_exit: str  # the last module of the residual branch (its output is added to the shortcut)
    shortcut_entry: str | None  # the first shortcut module (None: identity shortcut or none)
    application: int = 0  # which run of the module at ``path``: a tied stage runs its one block N times
    applications: int = 1  # how many times the module at ``path`` runs in a forward

    @property
    def label(self) -> str:
        """The block as results name it: its path, and for a tied stage which of its steps."""
        return self.path if self.applications == 1 else f"{self.path} step {self.application + 1}/{self.applications}"


def block_sites(plan: Plan) -> tuple[BlockSite, ...]:
    """Every block of ``plan`` in network order, each step of a tied stage as a block of its own
    (the unravelled view: h + dt * f(h) applied N times is N residual units sharing weights)."""
    return tuple(
        _site(block, application, stage.repeats)
        for stage in plan.stages
        for block in stage.blocks
        for application in range(stage.repeats)
    )


def _site(block: BlockPlan, application: int = 0, applications: int = 1) -> BlockSite:
    entry = block.preact[0] if block.preact else block.branch[0]
    return BlockSite(
        path=block.path,
        stage=block.stage,
        index=block.index + application,
        residual=block.shortcut_type != "none",
        reshapes=block.in_channels != block.out_channels or block.in_size != block.out_size,
        branch_entry=f"{block.path}.{entry.path}",
        branch_exit=f"{block.path}.{block.branch[-1].path}",
        shortcut_entry=f"{block.path}.{block.shortcut[0].path}" if block.shortcut else None,
        application=application,
        applications=applications,
    )


def by_module(sites: Iterable[BlockSite]) -> dict[str, Callable[[], BlockSite]]:
    """For each block module, a function that names the site of its next run: a hook calls it once
    per call of the module (once, or once per step of a tied stage, in the order they run)."""
    grouped: dict[str, list[BlockSite]] = {}
    for site in sites:
        grouped.setdefault(site.path, []).append(site)

    def runs_of(runs: list[BlockSite]) -> Callable[[], BlockSite]:
        calls = itertools.count()
        return lambda: runs[next(calls) % len(runs)]

    return {path: runs_of(runs) for path, runs in grouped.items()}


def require_blocks(plan: Plan, what: str, *, one_run_each: bool = False) -> tuple[BlockSite, ...]:
    """The blocks to ``what``; with ``one_run_each``, for analyses that change or measure a block
    module as one unit, a tied stage (one module run N times) is refused in one line."""
    sites = block_sites(plan)
    if not sites:
        raise SpecError(f"{plan.name}: has no blocks to {what}; give a spec with at least one stage")
    tied = next((site for site in sites if site.applications > 1), None)
    if one_run_each and tied is not None:
        raise SpecError(
            f"{plan.name}: cannot {what} a tied stage: {tied.path} is one block run {tied.applications} times,"
            " and this analysis changes or measures each block module as one; use the spec's untied form"
            " (its stages without tied: true)"
        )
    return sites


def deletable(site: BlockSite) -> bool:
    """A residual block loses its branch and keeps its shortcut; a plain block can only be dropped
    where its input has the shape of its output."""
    return site.residual or not site.reshapes


@contextmanager
def _hooks(handles: list[RemovableHandle]) -> Iterator[None]:
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def deleted_blocks(model: nn.Module, sites: Iterable[BlockSite]) -> Iterator[None]:
    """Run ``model`` with these blocks deleted (Veit et al. 2016): a residual block's branch gives
    zeros, so the block computes only its shortcut (a projection stays) and what follows the
    addition; a plain block passes its input on unchanged."""
    handles: list[RemovableHandle] = []
    for site in sites:
        if site.residual:
            branch = model.get_submodule(site.branch_exit)
            handles.append(branch.register_forward_hook(_zero_output))
        elif site.reshapes:
            raise SpecError(
                f"{site.path}: a plain block that changes the shape cannot be deleted; leave it out of the lesion"
            )
        else:
            block = model.get_submodule(site.path)
            handles.append(block.register_forward_hook(_pass_input))
    with _hooks(handles):
        yield


def _zero_output(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.zeros_like(output)


def _pass_input(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
    result: torch.Tensor = inputs[0]
    return result


@contextmanager
def swapped_blocks(model: nn.Module, pairs: Sequence[tuple[BlockSite, BlockSite]]) -> Iterator[None]:
    """Run ``model`` with each pair of blocks exchanged in place (Veit et al. 2016, Sec. 5); the
    blocks of a pair must take and give the same shapes."""
    done: list[tuple[str, str]] = []
    try:
        for first, second in pairs:
            if first.reshapes or second.reshapes:
                raise SpecError(f"{first.path}, {second.path}: only blocks that keep the shape can be swapped")
            _exchange(model, first.path, second.path)
            done.append((first.path, second.path))
        yield
    finally:
        for first_path, second_path in reversed(done):
            _exchange(model, first_path, second_path)


def _exchange(model: nn.Module, first: str, second: str) -> None:
    first_parent, _, first_name = first.rpartition(".")
    second_parent, _, second_name = second.rpartition(".")
    first_owner, second_owner = model.get_submodule(first_parent), model.get_submodule(second_parent)
    first_module, second_module = first_owner.get_submodule(first_name), second_owner.get_submodule(second_name)
    setattr(first_owner, first_name, second_module)
    setattr(second_owner, second_name, first_module)


@contextmanager
def gradient_routes(model: nn.Module, sites: Iterable[BlockSite], through_branch: Collection[str]) -> Iterator[None]:
    """Run ``model`` unchanged forwards, but let the backward pass through each residual block by
    one way only: its residual branch for the blocks whose paths are in ``through_branch``, its
    shortcut for the others (Veit et al. 2016, Sec. 6). Plain blocks have only their branch.

    Summed over every choice of ``through_branch``, the gradients are the full gradient."""
    handles: list[RemovableHandle] = []
    held: dict[str, torch.Tensor] = {}
    for site in sites:
        if not site.residual:
            continue
        if site.path not in through_branch:
            handles.append(model.get_submodule(site.branch_exit).register_forward_hook(_detach_output))
            continue
        # The block sees a detached input, except its branch, which is handed the original back.
        block = model.get_submodule(site.path)
        handles.append(block.register_forward_pre_hook(_holder(held, site.path)))
        handles.append(model.get_submodule(site.branch_entry).register_forward_pre_hook(_giver(held, site.path)))
        if site.shortcut_entry is not None:
            # A pre-activation projection reads the branch's normalised input: cut it there too.
            shortcut = model.get_submodule(site.shortcut_entry)
            handles.append(shortcut.register_forward_pre_hook(_detach_input))
    with _hooks(handles):
        yield


def _detach_output(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
    return output.detach()


def _detach_input(module: nn.Module, inputs: tuple[Any, ...]) -> tuple[Any, ...]:
    return (inputs[0].detach(), *inputs[1:])


def _holder(held: dict[str, torch.Tensor], path: str) -> Any:
    def hold(module: nn.Module, inputs: tuple[Any, ...]) -> tuple[Any, ...]:
        held[path] = inputs[0]
        return (inputs[0].detach(), *inputs[1:])

    return hold


def _giver(held: dict[str, torch.Tensor], path: str) -> Any:
    def give(module: nn.Module, inputs: tuple[Any, ...]) -> tuple[Any, ...]:
        return (held.pop(path), *inputs[1:])

    return give
