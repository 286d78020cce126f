"""The Neural-ODE block (Chen et al. 2018): the block's output is ``h(end)`` where ``h(start)`` is
its input and ``dh/dt = f(t, h)``, ``f`` a residual function whose convs read the time as an extra
input channel, solved by torchdiffeq (``solver``, ``rtol``, ``atol``, ``step_size``, ``adjoint``),
as torchdiffeq's ``examples/odenet_mnist.py`` builds it. ``unrolled: true`` (with ``solver:
euler``) writes the same function out as explicit Euler steps, ``h + dt * f(t_k, h)``, its weights
tied over the steps: a plain loop that needs only torch, equal to the solver's euler exactly.

Its options, rules, lowering and its one layer kind (:class:`NeuralODE`, the whole block: its
function's params, MACs per evaluation times the evaluations a fixed-grid solver makes, and its
torch module from ``runtime/ode.py`` and ``runtime/ode_solver.py``) are all here."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, model_validator

from ..choices import ActivationType, BlockOrder, BlockStep
from ..errors import SpecError
from ..plan.layers import KindLayer, Size
from ..spec.model import BlockSpec, StageSpec
from .registry import BlockKind, Branch, BranchInputs, Problem, Widths, register

if TYPE_CHECKING:
    from ..plan.layer_builder import LayerBuilder
    from ..plan.layers import Layer
    from ..plan.types import BlockPlan

# torchdiffeq's solvers: adaptive ones take rtol and atol; fixed-grid ones a step_size, with the
# function evaluations each step makes.
ADAPTIVE_SOLVERS = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")
FIXED_SOLVERS: dict[str, int] = {"euler": 1, "midpoint": 2, "heun3": 3, "rk4": 4}
Solver = Literal["dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun", "euler", "midpoint", "heun3", "rk4"]
Tolerance = Annotated[float, Field(gt=0.0, lt=1.0)]


class ODEBlockSpec(BlockSpec):
    type: Literal["ode"] = "ode"
    order: BlockOrder = Field(
        default="pre",
        description="An ode block's function is pre-activation (norm and activation before each conv); only `pre`.",
    )
    solver: Solver = Field(
        default="dopri5",
        description="`ode` only: torchdiffeq's method: adaptive `dopri5` (the paper's), `dopri8`, `bosh3`, `fehlberg2`, `adaptive_heun`, or fixed-grid `euler`, `midpoint`, `heun3`, `rk4`.",
    )
    rtol: Tolerance = Field(default=1e-3, description="`ode` only: the solver's relative tolerance.")
    atol: Tolerance = Field(default=1e-3, description="`ode` only: the solver's absolute tolerance.")
    step_size: Annotated[float, Field(gt=0.0, le=1000.0)] | None = Field(
        default=None,
        description="`ode` only, fixed-grid solvers: the step (unset: one step over the time span).",
    )
    adjoint: bool = Field(
        default=False,
        description="`ode` only: gradients by the adjoint method (torchdiffeq's odeint_adjoint), in memory independent of the steps.",
    )
    time: Annotated[list[float], Field(min_length=2, max_length=2)] = Field(
        default=[0.0, 1.0], description="`ode` only: the integration time span `[start, end]`."
    )
    unrolled: bool = Field(
        default=False,
        description="`ode` only, with `solver: euler`: the Euler steps as a plain loop over one function (torch only, no solver).",
    )

    @model_validator(mode="after")
    def _options_fit_solver(self) -> ODEBlockSpec:
        from ..spec.backbone import raise_problems

        problems: list[Problem] = []
        if self.order != "pre":
            problems.append((("order",), "an ode block's function is pre-activation; use order: pre", self.order))
        if self.solver in ADAPTIVE_SOLVERS and self.step_size is not None:
            problems.append(
                (
                    ("step_size",),
                    f"{self.solver} chooses its own steps; step_size applies to euler, midpoint, heun3 and rk4",
                    self.step_size,
                )
            )
        if self.unrolled and self.solver != "euler":
            problems.append(
                (("unrolled",), f"unrolled steps are explicit Euler steps; use solver: euler (got {self.solver})", True)
            )
        if self.unrolled and self.adjoint:
            problems.append(
                (("adjoint",), "the unrolled Euler form backpropagates through its steps; leave adjoint unset", True)
            )
        if self.time[1] <= self.time[0]:
            problems.append((("time",), f"needs start < end (got {list(self.time)})", list(self.time)))
        raise_problems(problems)
        return self

    @property
    def evaluations(self) -> int | None:
        """The function evaluations of one forward, where the solver fixes them (None: adaptive)."""
        if self.solver not in FIXED_SOLVERS:
            return None
        return grid_steps(self.time, self.step_size) * FIXED_SOLVERS[self.solver]


def grid_steps(time: list[float], step_size: float | None) -> int:
    """The steps of torchdiffeq's fixed grid: ``ceil(span / step_size + 1) - 1`` (one without a step size)."""
    if step_size is None:
        return 1
    return math.ceil((time[1] - time[0]) / step_size + 1) - 1


def _short(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class NeuralODE(KindLayer):
    """The whole ODE block: module ``odefunc`` holds the function (torchdiffeq's example's names:
    ``norm1``, ``conv1._layer``, ``norm2``, ``conv2._layer``, ``norm3``), each conv ``channels + 1``
    to ``channels``, 3x3, with a bias, the time its first input channel. ``evaluations``: of the
    function in one forward (None where an adaptive solver picks them; MACs then count one)."""

    channels: int
    norm_groups: int
    eps: float
    activation: ActivationType
    solver: str
    rtol: float
    atol: float
    step_size: float | None
    adjoint: bool
    start: float
    end: float
    unrolled: bool
    evaluations: int | None
    out_size: Size

    def _conv_weights(self) -> int:
        return self.channels * (self.channels + 1) * 9

    @property
    def params(self) -> int:
        return 2 * (self._conv_weights() + self.channels) + 3 * 2 * self.channels

    @property
    def macs_per_evaluation(self) -> int:
        return 2 * self._conv_weights() * self.out_size[0] * self.out_size[1]

    @property
    def macs(self) -> int:
        return self.macs_per_evaluation * (self.evaluations or 1)

    def torch_module(self) -> Any:
        from ..live.build import make_activation
        from ..runtime.ode import ConcatConv2d, EulerODEBlock, ODEFunc

        c = self.channels
        func = ODEFunc(
            ConcatConv2d(c, c), ConcatConv2d(c, c), c, self.norm_groups, make_activation(self.activation), eps=self.eps
        )
        if self.unrolled:
            return EulerODEBlock(
                func, self.start, self.end, self.step_size if self.step_size is not None else self.end - self.start
            )
        import torch

        # torchdiffeq makes its solvers' tableaux when first imported, on the default device:
        # never let that be the meta device a shapes-only build runs under.
        with torch.device("cpu"):
            from ..runtime.ode_solver import ODEBlock

        return ODEBlock(func, self.solver, self.rtol, self.atol, self.step_size, self.adjoint, self.start, self.end)

    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return shape

    def counts(self) -> tuple[int, int, int, int]:
        """Its counts for the evaluations a fixed-grid solver makes; for an adaptive solver, for
        one evaluation (its steps are chosen at run time: ``nfe`` after a forward says how many)."""
        pixels = self.out_size[0] * self.out_size[1]
        elements = self.channels * pixels
        # Per evaluation: fvcore 5 per element for each group norm; ptflops 2 per element for each
        # norm, the ReLU module run twice (hook and function) and the biases.
        fvcore = self.macs_per_evaluation + 3 * 5 * elements
        ptflops = self.macs_per_evaluation + 3 * 2 * elements + 2 * 2 * elements + 2 * elements
        n = self.evaluations or 1
        return (self.macs, fvcore * n, ptflops * n, 2 * elements * n)

    def saved(self) -> tuple[int, int]:
        elements = self.channels * self.out_size[0] * self.out_size[1]
        # Per evaluation backpropagated through: the three norms' inputs, two activations, the
        # two concatenated conv inputs; the adjoint method keeps none of the steps.
        steps = 1 if self.adjoint else (self.evaluations or 1)
        return steps * (7 * elements + 2 * self.out_size[0] * self.out_size[1]), steps * 3 * 2 * self.norm_groups

    def buffer_elements(self) -> int:
        return 0

    def _form(self) -> str:
        if self.unrolled:
            return f"{self.evaluations} Euler steps, weights tied"
        steps = f" step {_short(self.step_size)}" if self.step_size is not None else ""
        tolerances = f" rtol {_short(self.rtol)} atol {_short(self.atol)}" if self.solver in ADAPTIVE_SOLVERS else steps
        return f"{self.solver}{tolerances}" + (", adjoint" if self.adjoint else "")

    def text(self) -> tuple[str, str, str, str]:
        span = f"t {_short(self.start)}\u2192{_short(self.end)}"
        detail = f"{self.channels} \u2192 {self.channels}, 3\u00d73 convs + time channel, {span}, {self._form()}"
        return ("conv", "ODE block", detail, f"ODE [3\u00d73 {self.channels}]x2, {self._form()}")

    def doc(self) -> str:
        return "ODE function of two 3x3 time-channel"

    def report(self) -> list[str]:
        # An adaptive solver's evaluations are known only after a forward (the module's ``nfe``).
        counted = ", MACs of one evaluation" if self.evaluations is None else f", {self.evaluations} evaluations"
        return [f"f: two 3x3 time-channel convs of {self.channels}", f"ODE {self._form()}{counted}"]


@register
class ODEKind(BlockKind):
    name = "ode"
    options = ODEBlockSpec
    class_name = "NeuralODEBlock"
    title = "ODE block"
    inner_convs = 1
    inner_shape = "[conv1] width of an ode block"
    default_expansion = 1

    def widths(self, block: BlockSpec, width: int) -> Widths:
        return Widths(width, width, first_is_mid=True, mid_is_out=True)

    def stage_problems(self, block: BlockSpec, stage: StageSpec, here: tuple[str | int, ...]) -> list[Problem]:
        problems: list[Problem] = []
        if stage.stride != 1:
            problems.append(
                (
                    (*here, "stride"),
                    "an ode block keeps its input's shape (it integrates dh/dt = f(t, h)); use stride: 1 and downsample before it",
                    stage.stride,
                )
            )
        if block.attention is not None:
            problems.append(((*here, "block", "attention"), "attention does not apply to ode blocks", None))
        if stage.out_channels is not None or stage.inner_channels is not None or block.expansion not in (None, 1):
            problems.append(((*here, "width"), "an ode block keeps its input's channels; give only width", stage.width))
        return problems

    def anti_alias_problem(self, block: BlockSpec, index: int) -> str | None:
        return "anti_alias does not apply to ode blocks (they do not downsample)"

    def detail(self, block: BlockPlan) -> str:
        """The block's own words only: its function's order is its form, not a choice."""
        return (
            "["
            + ", ".join(word for layer in block.branch if isinstance(layer, NeuralODE) for word in layer.report())
            + "]"
        )

    def emitted_doc(self, block: BlockPlan) -> str | None:
        layer = block.branch[0]
        assert isinstance(layer, NeuralODE)
        form = "its explicit Euler steps, weights tied" if layer.unrolled else f"torchdiffeq's {layer.solver}"
        return (
            f"Neural-ODE block (Chen et al. 2018): h({_short(layer.end)}) under dh/dt = f(t, h) from h({_short(layer.start)}) = x,"
            f" by {form}; f is a norm, activation and 3x3 conv over the features and the time channel, twice, then a norm;"
            " no shortcut (the solution replaces the input)."
        )

    def preactivation(self, make: LayerBuilder, in_channels: int, order: BlockOrder) -> list[Layer]:
        return []  # the function's first norm and activation are its own, inside the solver

    def steps(self, order: BlockOrder, *, residual: bool, projects: bool) -> tuple[BlockStep, ...]:
        """The solver's output replaces the block's input: no shortcut, no addition."""
        return (BlockStep("branch"),)

    def lower(self, block: BlockSpec, inputs: BranchInputs) -> Branch:
        assert isinstance(block, ODEBlockSpec)
        norm = inputs.make.norm_spec
        if norm.type != "group":
            raise SpecError(
                f"norm.type: an ode block's function uses group norms (Chen et al. 2018), not {norm.type}; use norm: group"
            )
        if inputs.in_channels != inputs.out_channels or inputs.stride != 1:
            raise SpecError(
                f"stages: an ode block keeps its input's shape, but it would take {inputs.in_channels} channels to {inputs.out_channels};"
                f" give its stage width {inputs.in_channels}"
            )
        layer = NeuralODE(
            "ode",
            inputs.out_channels,
            norm.groups,
            norm.eps,
            inputs.make.activation,
            block.solver,
            block.rtol,
            block.atol,
            block.step_size,
            block.adjoint,
            block.time[0],
            block.time[1],
            block.unrolled,
            block.evaluations,
            inputs.size,
        )
        return Branch((layer,), inputs.size)
