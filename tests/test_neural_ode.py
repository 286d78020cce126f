"""The Neural-ODE view: the ``ode`` block kind and the MNIST comparison of Chen et al. 2018
(Table 1), held to torchdiffeq's ``examples/odenet_mnist.py``, whose modules are written out
below as the independent reference, and to torchdiffeq's solvers.

The reference is an ``nn.Sequential`` (downsampling, features, head), so its state_dict keys are
numbered; :func:`to_ours` is the key converter: the numbered top-level modules become our module
paths (``stem_layers.<i>``, ``layer<s>.<b>``, ``norm``, ``fc``), the names inside a ResBlock
follow our pre-activation block (``norm1`` -> ``bn1``, ``norm2`` -> ``bn2``, ``downsample`` ->
``downsample.0``), and the ODE block's ``odefunc`` keeps the example's names under ``ode``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

torchdiffeq = pytest.importorskip("torchdiffeq")

import resnet_gen as rg  # noqa: E402
from resnet_gen.cli import main  # noqa: E402
from resnet_gen.compile import compile_spec  # noqa: E402
from resnet_gen.emit import emit_source  # noqa: E402

# --- torchdiffeq's examples/odenet_mnist.py, as its authors wrote it ---------------------------


def norm(dim: int) -> nn.Module:
    return nn.GroupNorm(min(32, dim), dim)


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class ResBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.norm1 = norm(inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.norm2 = norm(planes)
        self.conv2 = conv3x3(planes, planes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        out = self.relu(self.norm1(x))
        if self.downsample is not None:
            shortcut = self.downsample(out)
        out = self.conv1(out)
        out = self.norm2(out)
        out = self.relu(out)
        out = self.conv2(out)
        return out + shortcut


class ConcatConv2d(nn.Module):
    def __init__(self, dim_in: int, dim_out: int, ksize: int = 3, stride: int = 1, padding: int = 1) -> None:
        super().__init__()
        self._layer = nn.Conv2d(dim_in + 1, dim_out, kernel_size=ksize, stride=stride, padding=padding, bias=True)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        tt = torch.ones_like(x[:, :1, :, :]) * t
        return self._layer(torch.cat([tt, x], 1))


class ODEfunc(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm1 = norm(dim)
        self.relu = nn.ReLU(inplace=True)
        self.conv1 = ConcatConv2d(dim, dim, 3, 1, 1)
        self.norm2 = norm(dim)
        self.conv2 = ConcatConv2d(dim, dim, 3, 1, 1)
        self.norm3 = norm(dim)
        self.nfe = 0

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        out = self.norm1(x)
        out = self.relu(out)
        out = self.conv1(t, out)
        out = self.norm2(out)
        out = self.relu(out)
        out = self.conv2(t, out)
        return self.norm3(out)


class ODEBlock(nn.Module):
    def __init__(self, odefunc: nn.Module, tol: float = 1e-3, adjoint: bool = False) -> None:
        super().__init__()
        self.odefunc = odefunc
        self.integration_time = torch.tensor([0, 1]).float()
        self.tol = tol
        self.adjoint = adjoint

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.integration_time = self.integration_time.type_as(x)
        solve = torchdiffeq.odeint_adjoint if self.adjoint else torchdiffeq.odeint
        out = solve(self.odefunc, x, self.integration_time, rtol=self.tol, atol=self.tol)
        return out[1]


def reference(network: str, downsampling: str, adjoint: bool = False) -> nn.Sequential:
    if downsampling == "conv":
        front = [
            nn.Conv2d(1, 64, 3, 1),
            norm(64),
            nn.ReLU(inplace=True),
            nn.Conv2d(64, 64, 4, 2, 1),
            norm(64),
            nn.ReLU(inplace=True),
            nn.Conv2d(64, 64, 4, 2, 1),
        ]
    else:
        front = [
            nn.Conv2d(1, 64, 3, 1),
            ResBlock(64, 64, stride=2, downsample=conv1x1(64, 64, 2)),
            ResBlock(64, 64, stride=2, downsample=conv1x1(64, 64, 2)),
        ]
    features = [ODEBlock(ODEfunc(64), adjoint=adjoint)] if network == "odenet" else [ResBlock(64, 64) for _ in range(6)]
    head = [norm(64), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*front, *features, *head)


# --- the key converter --------------------------------------------------------------------------

SPECS = {
    ("resnet", "conv"): "odenet_mnist_resnet_conv",
    ("odenet", "conv"): "odenet_mnist_conv",
    ("resnet", "res"): "odenet_mnist_resnet_res",
    ("odenet", "res"): "odenet_mnist_res",
}
# Table 1 of Chen et al. 2018 rounds these: ResNet 0.60M, ODE-Net 0.22M (conv front).
COUNTS = {
    "odenet_mnist_resnet_conv": 576_778,
    "odenet_mnist_conv": 208_266,
    "odenet_mnist_resnet_res": 601_482,
    "odenet_mnist_res": 232_970,
}

BLOCK_NAMES = {"norm1": "bn1", "norm2": "bn2", "conv1": "conv1", "conv2": "conv2", "downsample": "downsample.0"}


def module_paths(network: str, downsampling: str) -> list[str]:
    """Our module path for each top-level module of the reference, in its order."""
    if downsampling == "conv":
        front = [f"stem_layers.{i}" for i in range(7)]
        stages = ["layer1"]
    else:
        front = ["stem_layers.0", "layer1.0", "layer2.0"]
        stages = ["layer3"]
    features = [f"{stages[0]}.0.ode"] if network == "odenet" else [f"{stages[0]}.{i}" for i in range(6)]
    return [*front, *features, "norm", "final_act", "global_pool", "flatten", "fc"]


def to_ours(state: dict[str, torch.Tensor], network: str, downsampling: str) -> dict[str, torch.Tensor]:
    paths = module_paths(network, downsampling)
    out = {}
    for key, tensor in state.items():
        index, rest = key.split(".", 1)
        path = paths[int(index)]
        first, _, tail = rest.partition(".")
        if first in BLOCK_NAMES and not path.endswith(".ode"):
            rest = f"{BLOCK_NAMES[first]}.{tail}"
        out[f"{path}.{rest}"] = tensor
    return out


CASES = list(SPECS)


def _pair(network: str, downsampling: str, **kw: bool) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    ref = reference(network, downsampling, **kw).double()
    ours = rg.build(rg.load_spec(SPECS[network, downsampling])).double()
    ours.load_state_dict(to_ours(ref.state_dict(), network, downsampling), strict=True)
    return ref, ours


@pytest.mark.parametrize(("network", "downsampling"), CASES, ids=[SPECS[case] for case in CASES])
def test_counts_are_the_examples(network: str, downsampling: str) -> None:
    name = SPECS[network, downsampling]
    ref = reference(network, downsampling)
    expected = sum(p.numel() for p in ref.parameters())
    assert expected == COUNTS[name]
    assert rg.analyze(rg.load_spec(name)).params == expected
    assert sum(p.numel() for p in rg.build(rg.load_spec(name)).parameters()) == expected


@pytest.mark.parametrize(("network", "downsampling"), CASES, ids=[SPECS[case] for case in CASES])
def test_outputs_gradients_and_nfe_equal_the_examples(network: str, downsampling: str) -> None:
    """Strict load of the example's weights, then equal float64 outputs, input gradients and
    weight gradients; for the ODE-Nets the same number of function evaluations (dopri5 at 1e-3)."""
    ref, ours = _pair(network, downsampling)
    torch.manual_seed(1)
    x = torch.randn(2, 1, 28, 28, dtype=torch.float64)
    x_ref, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_ref, out_ours = ref(x_ref), ours(x_ours)
    torch.testing.assert_close(out_ours, out_ref, rtol=1e-10, atol=1e-10)
    if network == "odenet":
        nfe = ref[-6].odefunc.nfe
        assert nfe > 2  # dopri5 took steps of its own choosing
        assert ours.get_submodule(module_paths(network, downsampling)[-6]).nfe == nfe
    out_ref.square().sum().backward()
    out_ours.square().sum().backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, rtol=1e-8, atol=1e-10)
    theirs = to_ours({k: p.grad for k, p in ref.named_parameters()}, network, downsampling)
    for key, param in ours.named_parameters():
        torch.testing.assert_close(param.grad, theirs[key], rtol=1e-8, atol=1e-10, msg=key)


@pytest.mark.parametrize("name", list(COUNTS))
def test_emitted_source_loads_the_examples_weights(name: str) -> None:
    """The emitted file of each spec takes the example's state_dict strictly and computes the same."""
    from tests.emit_support import emitted_catalog_module

    network, downsampling = next(case for case, spec in SPECS.items() if spec == name)
    torch.manual_seed(0)
    ref = reference(network, downsampling).double()
    emitted = getattr(emitted_catalog_module(name), name)().double()
    emitted.load_state_dict(to_ours(ref.state_dict(), network, downsampling), strict=True)
    x = torch.randn(2, 1, 28, 28, dtype=torch.float64)
    torch.testing.assert_close(emitted(x), ref(x), rtol=1e-10, atol=1e-10)


def _ode_net(overrides: list[str]) -> nn.Module:
    _, plan = compile_spec("odenet_mnist_conv", overrides)
    return rg.build(plan).double()


@pytest.mark.parametrize("steps", [1, 4])
def test_euler_in_n_steps_is_its_euler_form_exactly(steps: int) -> None:
    """The continuum bridge: torchdiffeq's euler in N steps of 1/N equals, bit for bit in float64,
    the Euler form (the same residual function, weights tied over N steps, each step
    ``h + (1/N) * f(t_k, h)`` with that step's time as the extra channel); both equal a loop over
    the example's ODE function written out here."""
    step = [f"block.step_size={1 / steps!r}"]
    solved = _ode_net(["block.solver=euler", *step])
    unrolled = _ode_net(["block.solver=euler", "block.unrolled=true", *step])
    torch.manual_seed(2)
    unrolled.load_state_dict(solved.state_dict(), strict=True)
    for param in solved.parameters():  # non-trivial weights: biases and norms too
        param.data.normal_(0, 0.1)
    unrolled.load_state_dict(solved.state_dict(), strict=True)
    x = torch.randn(2, 1, 28, 28, dtype=torch.float64)
    assert torch.equal(solved(x), unrolled(x))
    assert solved.get_submodule("layer1.0.ode").nfe == unrolled.get_submodule("layer1.0.ode").nfe == steps
    # The same function as the example's ODEfunc, stepped by hand.
    func = ODEfunc(64).double()
    func.load_state_dict(
        {k.removeprefix("layer1.0.ode.odefunc."): v for k, v in solved.state_dict().items() if ".ode." in k}
    )
    front = solved.stem_layers(x)
    h = front
    for k in range(steps):
        h = h + (1 / steps) * func(torch.tensor(k / steps, dtype=torch.float64), h)
    torch.testing.assert_close(unrolled.get_submodule("layer1.0.ode")(front), h, rtol=0, atol=1e-12)


def test_the_catalogs_euler_form_is_euler_in_four_steps() -> None:
    """odenet_mnist_conv_euler (the Euler form, a spec) equals odenet_mnist_conv solved by
    torchdiffeq's euler at step 0.25 (an override), bit for bit in float64, on the same weights."""
    euler = rg.build(rg.load_spec("odenet_mnist_conv_euler")).double()
    solved = _ode_net(["block.solver=euler", "block.step_size=0.25"])
    solved.load_state_dict(euler.state_dict(), strict=True)
    x = torch.randn(2, 1, 28, 28, dtype=torch.float64)
    assert torch.equal(euler(x), solved(x))
    assert "torchdiffeq" not in type(euler.get_submodule("layer1.0.ode")).__module__


def test_euler_form_emits_torch_only_and_the_solver_form_declares_torchdiffeq() -> None:
    _, unrolled = compile_spec(
        "odenet_mnist_conv", ["block.solver=euler", "block.unrolled=true", "block.step_size=0.25"]
    )
    source = emit_source(unrolled)
    assert "import torchdiffeq" not in source and "torchdiffeq." not in source
    assert "EulerODEBlock(" in source and "It needs only torch" in " ".join(source.split())
    solved = emit_source(rg.lower(rg.load_spec("odenet_mnist_conv")))
    assert "\nimport torchdiffeq\n" in solved and "It needs torch and torchdiffeq" in " ".join(solved.split())
    resnet = emit_source(rg.lower(rg.load_spec("odenet_mnist_resnet_conv")))
    assert "import torchdiffeq" not in resnet and "It needs only torch" in " ".join(resnet.split())


def test_fixed_solvers_report_their_evaluations() -> None:
    """rk4 in 4 steps: 16 evaluations of the function, as torchdiffeq's rk4 (3/8 rule) makes."""
    net = _ode_net(["stages[0].block.solver=rk4", "stages[0].block.step_size=0.25"])
    net(torch.randn(1, 1, 28, 28, dtype=torch.float64))
    assert net.get_submodule("layer1.0.ode").nfe == 16
    _, plan = compile_spec("odenet_mnist_conv", ["stages[0].block.solver=rk4", "stages[0].block.step_size=0.25"])
    _, one = compile_spec("odenet_mnist_conv", [])
    per_evaluation = 2 * (64 * 65 * 3 * 3) * 6 * 6  # two 65-to-64 3x3 convs on the 6x6 map
    assert plan.blocks[0].macs == 16 * per_evaluation and one.blocks[0].macs == per_evaluation
    assert plan.params == one.params == 208_266


def test_adjoint_gradients_equal_backpropagation() -> None:
    tight = ["block.rtol=1.0e-7", "block.atol=1.0e-7"]
    direct = _ode_net(tight)
    torch.manual_seed(3)
    for param in direct.get_submodule("layer1.0.ode").parameters():  # gentle dynamics: few steps
        param.data.normal_(0, 0.05)
    adjoint = _ode_net([*tight, "block.adjoint=true"])
    adjoint.load_state_dict(direct.state_dict(), strict=True)
    x = torch.randn(1, 1, 28, 28, dtype=torch.float64)
    direct(x).square().sum().backward()
    adjoint(x).square().sum().backward()
    # The adjoint solves its own ODE backwards (optimise-then-discretise): at tolerance 1e-7 its
    # gradients agree with backpropagation through dopri5's steps to within 3% of each tensor's
    # largest gradient (measured: at most 2.1% in the ODE function's first norm, 1e-4 in the stem).
    # The gap is the ReLU's kink, not the adjoint: against a fine fixed grid (rk4, h = 0.002) the
    # adjoint is within 0.2% and backpropagation through dopri5's chosen steps 1.3%; with smooth
    # dynamics the two meet at the solver's tolerance (the next test).
    for (key, a), b in zip(adjoint.named_parameters(), direct.parameters(), strict=True):
        assert a.grad is not None and b.grad is not None
        assert (a.grad - b.grad).abs().max() <= 0.03 * b.grad.abs().max(), key


def test_adjoint_gradients_converge_with_smooth_dynamics() -> None:
    """With a smooth function (tanh for ReLU) the adjoint's gradients, backpropagation through
    dopri5 and backpropagation through a fine fixed rk4 grid (h = 0.01, whose own error is 4e-8)
    agree to 1e-5 of each tensor's largest gradient at tolerance 1e-9."""
    smooth = ["activation=tanh"]
    tight = [*smooth, "block.rtol=1.0e-9", "block.atol=1.0e-9"]
    nets = {
        "grid": _ode_net([*smooth, "block.solver=rk4", "block.step_size=0.01"]),
        "direct": _ode_net(tight),
        "adjoint": _ode_net([*tight, "block.adjoint=true"]),
    }
    torch.manual_seed(3)
    for param in nets["grid"].get_submodule("layer1.0.ode").parameters():
        param.data.normal_(0, 0.05)
    x = torch.randn(1, 1, 28, 28, dtype=torch.float64)
    grads = {}
    for name, net in nets.items():
        net.load_state_dict(nets["grid"].state_dict(), strict=True)
        net(x).square().sum().backward()
        grads[name] = {key: param.grad for key, param in net.named_parameters()}
    assert nets["adjoint"].get_submodule("layer1.0.ode").nfe > 0
    for key, reference in grads["grid"].items():
        assert reference is not None
        for name in ("direct", "adjoint"):
            got = grads[name][key]
            assert got is not None
            assert (got - reference).abs().max() <= 1e-5 * reference.abs().max(), (name, key)


@pytest.mark.parametrize(
    ("overrides", "where", "says"),
    [
        (["stages[0].stride=2"], "stages[0].stride", "keeps its input's shape"),
        (["stages[0].width=32"], "stages", "keeps its input's shape"),
        (["block.solver=dopri7"], "block.solver", "dopri5"),
        (["block.solver=euler", "block.step_size=0"], "block.step_size", "must be a number > 0"),
        (["block.solver=euler", "block.step_size=-0.5"], "block.step_size", "must be a number > 0"),
        (["block.step_size=0.5"], "block.step_size", "chooses its own steps"),
        (["block.unrolled=true"], "block.unrolled", "use solver: euler"),
        (["norm.groups=24"], "norm.groups", "divisible by groups 24"),
        (["norm=batch"], "norm.type", "group norms"),
    ],
)
def test_bad_options_are_located(overrides: list[str], where: str, says: str) -> None:
    with pytest.raises(rg.SpecError) as caught:
        compile_spec("odenet_mnist_conv", overrides)
    message = str(caught.value)
    assert where in message and says in message, message


def test_set_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    main(["info", "odenet_mnist_res", "--set", "stages[2].block.solver=rk4", "--set", "stages[2].block.step_size=0.5"])
    assert "ODE rk4 step 0.5" in capsys.readouterr().out
    with pytest.raises(SystemExit) as caught:
        main(["validate", "odenet_mnist_conv", "--set", "block.solver=rk5"])
    assert caught.value.code == 1
    assert "block.solver" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("stem", "where", "says"),
    [
        ({"type": "layers", "layers": [{"type": "conv", "kernel": 3}]}, "stem.layers[0].channels", "needs channels"),
        (
            {"type": "layers", "layers": [{"type": "conv", "channels": 8}, {"type": "norm", "kernel": 3}]},
            "stem.layers[1].kernel",
            "conv entries only",
        ),
        ({"type": "layers", "layers": ["norm", "act"]}, "stem.layers", "at least one conv"),
        (
            {"type": "layers", "width": 32, "layers": [{"type": "conv", "channels": 64}]},
            "stem.width",
            "last conv's channels (64)",
        ),
        ({"type": "layers", "pool": "max", "layers": [{"type": "conv", "channels": 64}]}, "stem.pool", "no pool"),
        (
            {"type": "conv", "layers": [{"type": "conv", "channels": 64}]},
            "stem",
            "layers applies to stems of type: layers only",
        ),
    ],
)
def test_bad_layers_stems_are_located(stem: dict[str, object], where: str, says: str, tmp_path: Path) -> None:
    text = {
        "name": "bad_stem",
        "input": {"channels": 1, "size": 28},
        "stem": stem,
        "stages": [{"blocks": 1, "width": 64}],
    }
    path = tmp_path / "bad_stem.yaml"
    path.write_text(json.dumps(text), encoding="utf-8")  # JSON is YAML
    with pytest.raises(rg.SpecError) as caught:
        rg.load_spec(path)
    message = str(caught.value)
    assert where in message and says in message, message


def test_layers_stem_keys_and_sizes() -> None:
    """Entry i of a layers stem is stem_layers.<i>; convs take their own kernel, stride, padding and bias."""
    model = rg.build(rg.load_spec("odenet_mnist_resnet_conv"))
    stem = model.stem_layers
    assert [type(m).__name__ for m in stem] == ["Conv2d", "GroupNorm", "ReLU", "Conv2d", "GroupNorm", "ReLU", "Conv2d"]
    assert (stem[0].kernel_size, stem[0].padding, stem[3].kernel_size, stem[3].stride, stem[3].padding) == (
        (3, 3),
        (0, 0),
        (4, 4),
        (2, 2),
        (1, 1),
    )
    assert all(stem[i].bias is not None for i in (0, 3, 6))
    assert stem(torch.zeros(1, 1, 28, 28)).shape == (1, 64, 6, 6)
