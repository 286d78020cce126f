"""The Neural-ODE block (Chen et al. 2018) that integrates its residual function with a solver of
torchdiffeq, as torchdiffeq's ``examples/odenet_mnist.py`` builds it (module ``odefunc``)."""

from __future__ import annotations

import torch
import torchdiffeq
from torch import nn


class ODEBlock(nn.Module):
    """``h(end)`` from ``h(start) = x`` under ``dh/dt = odefunc(t, h)``, solved by torchdiffeq's
    ``method`` (``rtol``, ``atol``; ``step_size`` for its fixed-grid solvers), backpropagated
    through the solver or, with ``adjoint``, by the adjoint method. ``nfe``: the function's
    evaluations in the last forward."""

    def __init__(
        self,
        odefunc: nn.Module,
        method: str = "dopri5",
        rtol: float = 1e-3,
        atol: float = 1e-3,
        step_size: float | None = None,
        adjoint: bool = False,
        start: float = 0.0,
        end: float = 1.0,
    ) -> None:
        super().__init__()
        self.odefunc = odefunc
        self.method = method
        self.rtol = rtol
        self.atol = atol
        self.options = None if step_size is None else {"step_size": step_size}
        self.adjoint = adjoint
        self.start = start
        self.end = end

    @property
    def nfe(self) -> int:
        return int(self.odefunc.nfe)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.odefunc.nfe = 0  # type: ignore[assignment]
        times = torch.tensor([self.start, self.end], dtype=x.dtype, device=x.device)
        solve = torchdiffeq.odeint_adjoint if self.adjoint else torchdiffeq.odeint
        out = solve(self.odefunc, x, times, rtol=self.rtol, atol=self.atol, method=self.method, options=self.options)
        last: torch.Tensor = out[1]
        return last
