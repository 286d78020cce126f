"""Property-based tests: random valid specs go all the way through (validate, lower, build, counts
equal torch's); random mutations of them fail only with a located SpecError.

Two hypothesis profiles: ``ci`` (the default, a few dozen examples per property, part of `make
test`) and ``long`` (thousands of examples, for people):

    RESNET_GEN_HYPOTHESIS=long .venv/bin/pytest tests/test_properties.py
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import resnet_gen as rg
from resnet_gen.cli import main
from resnet_gen.spec.names import name_problem

settings.register_profile(
    "ci", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.register_profile(
    "long", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
PROFILE = settings.get_profile(os.environ.get("RESNET_GEN_HYPOTHESIS", "ci"))
# Building torch modules costs ~0.1 s an example, counting MACs with torch's flop counter ~0.4 s:
# the build property runs a fifth as many examples in the long profile and counts MACs on one in four.
BUILD_PROFILE = settings(PROFILE, max_examples=max(20, PROFILE.max_examples // 5))

# One problem per line: where (file:line:col, or just the file for whole-file problems, or --set),
# the key path when there is one, and the message.
LOCATED = re.compile(r"^(?:--set|[^:\n]+\.yaml(?::\d+:\d+)?): \S.*$")

ACTIVATIONS = ["relu", "leaky_relu", "silu", "gelu", "mish", "hardswish", "elu", "tanh", "identity"]


@st.composite
def valid_specs(draw: st.DrawFn) -> dict[str, Any]:
    """Small specs over the language's main choices, built to satisfy its cross-field rules."""
    block_type = draw(st.sampled_from(["basic", "bottleneck"]))
    order = draw(st.sampled_from(["post", "bn_after_add", "relu_before_add", "relu_preact", "pre"]))
    block: dict[str, Any] = {"type": block_type, "order": order}
    groups = 1
    if block_type == "bottleneck":
        groups = draw(st.sampled_from([1, 2, 4]))
        block["groups"] = groups
        block["width_per_group"] = draw(st.sampled_from([16, 32, 64]))
        block["stride_on"] = draw(st.sampled_from(["1x1", "3x3"]))
        expansion = draw(st.sampled_from([None, 1, 2, 4]))
        if expansion is not None:
            block["expansion"] = expansion
    else:
        block["dropout"] = draw(st.sampled_from([0.0, 0.0, 0.3]))
    attention = draw(st.sampled_from([None, "se", "eca"]))
    if attention is not None:
        block["attention"] = attention

    stem_width = draw(st.sampled_from([8, 16, 32]))
    stem: dict[str, Any] = {
        "type": draw(st.sampled_from(["conv", "deep", "deep_tiered"])),
        "width": stem_width,
        "kernel": draw(st.sampled_from([1, 3, 5, 7])),
        "stride": draw(st.sampled_from([1, 2])),
        "deep_width": draw(st.sampled_from([8, 16])),
        "pool": draw(st.sampled_from(["max", "conv", "none"])),
    }
    stage_count = draw(st.integers(1, 4))
    widths = sorted(draw(st.lists(st.sampled_from([8, 16, 32, 64]), min_size=stage_count, max_size=stage_count)))
    stages = [
        {
            "blocks": draw(st.integers(1, 3)),
            "width": width,
            "stride": 1 if index == 0 else draw(st.sampled_from([1, 2])),
        }
        for index, width in enumerate(widths)
    ]
    expansion_factor = block.get("expansion", 4 if block_type == "bottleneck" else 1)
    shortcut_options = ["projection", "projection_all", "avg_down", "none", "B", "C", "D"]
    if widths[0] * expansion_factor >= stem_width:  # zero-padding only ever adds channels
        shortcut_options.append("zero_pad")
    shortcut = draw(st.sampled_from(shortcut_options))
    norm_type = draw(st.sampled_from(["batch", "frozen_batch", "group", "none"]))
    norm: dict[str, Any] = {"type": norm_type}
    if norm_type == "group":
        # Every width drawn here is even (deep_tiered's first conv has 6 or 12), so 2 always divides.
        norm["groups"] = draw(st.sampled_from([1, 2]))
    size = draw(st.one_of(st.integers(8, 40), st.tuples(st.integers(8, 40), st.integers(8, 40)).map(list)))
    spec: dict[str, Any] = {
        # Any name the language accepts (the refused ones, keywords and modules such as 're' or
        # 'torch' that a generated file would shadow, have tests of their own).
        "name": draw(st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True).filter(lambda n: name_problem(n) is None)),
        "description": draw(
            st.text(
                st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cf"), include_characters="\n\t"),
                max_size=60,
            )
        ),
        "input": {"channels": draw(st.integers(1, 4)), "size": size},
        "stem": stem,
        "block": block,
        "shortcut": shortcut,
        "norm": norm,
        "activation": draw(st.sampled_from(ACTIVATIONS)),
        "stages": stages,
        "head": draw(
            st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {
                        "pool": st.sampled_from(["avg", "max"]),
                        "dropout": st.sampled_from([0.0, 0.5]),
                        "num_classes": st.integers(0, 12),
                    }
                ),
            )
        ),
        "init": {"zero_init_residual": draw(st.booleans())},
        "drop_path": draw(st.sampled_from([0.0, 0.1])),
        "conv": "plain",
    }
    # Weight standardisation needs two weights per filter: not a 1x1 stem conv on one channel.
    if stem["type"] != "conv" or stem["kernel"] > 1 or spec["input"]["channels"] > 1:
        spec["conv"] = draw(st.sampled_from(["plain", "plain", "weight_standardized"]))
    if order == "post" and block.get("stride_on", "3x3") == "3x3":
        anti_alias = draw(st.sampled_from([None, None, "avg", "blur"]))
        if anti_alias is not None:
            spec["anti_alias"] = anti_alias
    return spec


def _write(folder: Path, name: str, data: dict[str, Any]) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _load_unless_too_small(path: Path) -> rg.Spec:
    """Small or odd random inputs may not fit anti-aliased downsampling (too small, or branch and
    shortcut sizes disagree); that refusal is right and tested in the corpus, so such examples are
    discarded rather than counted as failures."""
    try:
        return rg.load_spec(path)
    except rg.SpecError as error:
        assume(
            not all(
                re.search(r": input\.size: (too small for|does not fit) this network", line) for line in error.problems
            )
        )
        raise


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("properties")


@BUILD_PROFILE
@given(
    data=valid_specs(),
    count_macs_too=st.sampled_from([True, False, False, False]),
    compare_emitted=st.booleans(),
)
def test_valid_specs_validate_lower_build_and_count_like_torch(
    data: dict[str, Any], count_macs_too: bool, compare_emitted: bool, workdir: Path
) -> None:
    import torch
    from torch_helpers import count_macs, count_params

    spec = _load_unless_too_small(_write(workdir, "valid", data))
    plan = rg.lower(spec)
    report = rg.analyze(plan)
    model = rg.build(spec)
    assert report.params == count_params(model)
    if count_macs_too:
        assert report.macs == count_macs(model, spec.input.channels, spec.input.hw)
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(2, spec.input.channels, *spec.input.hw))
    last = plan.stages[-1].blocks[-1]
    head = spec.head
    if head is None:
        assert tuple(out.shape) == (2, last.out_channels, *last.out_size)
    else:
        assert tuple(out.shape) == (2, head.num_classes or last.out_channels)
    if compare_emitted:
        _assert_emitted_matches_live(spec, model, workdir)


_emitted_count = iter(range(1_000_000))


def _assert_emitted_matches_live(spec: rg.Spec, live: Any, folder: Path) -> None:
    """The emitted file compiles, imports with torch alone, and gives the live module's
    state_dict (keys, shapes) and, with the same float64 weights, its outputs."""
    import importlib.util
    import sys

    import torch

    source = rg.emit(spec)
    compile(source, f"{spec.name}.py", "exec")
    module_name = f"emitted_property_{next(_emitted_count)}"
    path = folder / f"{module_name}.py"
    path.write_text(source, encoding="utf-8")
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    assert loader_spec is not None and loader_spec.loader is not None
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    try:
        loader_spec.loader.exec_module(module)
        emitted = getattr(module, spec.name)()
    finally:
        del sys.modules[module_name]
    live_state, emitted_state = live.state_dict(), emitted.state_dict()
    assert list(emitted_state) == list(live_state)
    assert {k: v.shape for k, v in emitted_state.items()} == {k: v.shape for k, v in live_state.items()}
    # Random weights through the state_dict only: fixed non-persistent buffers (a blur filter) stay.
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, value in live.state_dict().items():
        if value.is_floating_point():
            noise = torch.rand(value.shape, generator=generator, dtype=torch.float64)
            value = 0.5 + noise if value.dim() <= 1 else (noise - 0.5) * 2.0 / max(1, value[0].numel()) ** 0.5
        state[key] = value
    live.double()
    emitted.double()
    live.load_state_dict(state, strict=True)
    emitted.load_state_dict(state, strict=True)
    live.eval()
    emitted.eval()
    x = torch.randn(
        2, spec.input.channels, *spec.input.hw, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        torch.testing.assert_close(emitted(x), live(x), rtol=0, atol=1e-10)


@settings(PROFILE)
@given(data=valid_specs())
def test_a_validated_spec_written_back_reads_the_same(data: dict[str, Any], workdir: Path) -> None:
    """The front end is stable: dump the validated spec, read it back, get the same spec and plan."""
    spec = _load_unless_too_small(_write(workdir, "first", data))
    again = rg.load_spec(_write(workdir, spec.name, spec.model_dump(mode="json")))
    assert again == spec
    assert rg.lower(again) == rg.lower(spec)


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.one_of(st.integers(-5, 300), st.text(max_size=4)), max_size=4),
    st.dictionaries(st.text(max_size=6), st.integers(-5, 5), max_size=2),
)
# Characters that matter to YAML, plus control characters and a few look-alikes.
NOISE = st.text(
    st.sampled_from([*":-[]{},&*!|>'\"#%@`\t\n\r \x00\x07\x1b\u200b\u00e9\ufeff\u0435\\"]),
    min_size=1,
    max_size=4,
)


def _paths(node: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


def _parent(data: Any, path: tuple[str | int, ...]) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


@st.composite
def mutated_spec_files(draw: st.DrawFn) -> bytes:
    """A valid spec broken in one of several ways: a value replaced by junk, a key deleted, added
    or misspelled, or the YAML text itself cut or sprinkled with characters YAML cares about."""
    data = draw(valid_specs())
    kind = draw(st.sampled_from(["junk", "delete", "add", "rename", "text", "truncate"]))
    paths = _paths(data)
    if kind in ("junk", "delete", "rename"):
        path = draw(st.sampled_from(paths))
        parent = _parent(data, path)
        last = path[-1]
        if kind == "junk":
            parent[last] = draw(JUNK)
        elif kind == "delete":
            del parent[last]
        elif isinstance(parent, dict):
            parent[f"{last}{draw(st.sampled_from(['s', '_', 'x', '']))}".upper()] = parent.pop(last)
    elif kind == "add":
        mappings = [()] + [p for p in paths if isinstance(_parent(data, (*p, "x")), dict)]
        target = _parent(data, (*draw(st.sampled_from(mappings)), "x"))
        target[draw(st.text(min_size=1, max_size=8))] = draw(JUNK)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    if kind == "text":
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(NOISE) + text[at + draw(st.integers(0, 2)) :]
    if kind == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    raw = text.encode("utf-8")
    if draw(st.booleans()) and kind == "text":
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=3)) + raw[at:]
    return raw


@contextlib.contextmanager
def _inside(folder: Path) -> Iterator[None]:
    """Run in ``folder`` so messages name the file relative to it (hypothesis cannot use monkeypatch)."""
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def _check_problems(error: rg.SpecError) -> None:
    assert error.problems, "a SpecError always carries at least one problem"
    assert str(error).splitlines() == list(error.problems)
    for line in error.problems:
        assert LOCATED.match(line), line


@settings(PROFILE)
@given(raw=mutated_spec_files())
def test_mutated_specs_fail_only_with_located_spec_errors(raw: bytes, workdir: Path) -> None:
    path = workdir / "mutated.yaml"
    path.write_bytes(raw)
    with _inside(workdir):
        try:
            rg.analyze(rg.load_spec("mutated.yaml"))
        except rg.SpecError as error:
            _check_problems(error)
            api_problems: tuple[str, ...] | None = error.problems
        else:
            api_problems = None
        stderr, stdout = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout), pytest.raises(SystemExit) as ended:
            main(["validate", "mutated.yaml"])
            raise SystemExit(0)
    if api_problems is None:
        assert ended.value.code == 0 and stderr.getvalue() == ""
    else:
        assert ended.value.code == 1
        assert stderr.getvalue().splitlines() == [f"error: {line}" for line in api_problems]


OVERRIDE_PATHS = st.one_of(
    st.sampled_from(
        [
            "stages[0].blocks",
            "stages[1].width",
            "stages[7].stride",
            "head.num_classes",
            "head",
            "input.size",
            "input.size[1]",
            "block.type",
            "block.groups",
            "norm",
            "norm.groups",
            "shortcut",
            "stem.kernel",
            "name",
            "stages",
            "backbone.output_stride",
        ]
    ),
    st.from_regex(r"[a-z_\[\]0-9.\-]{1,20}", fullmatch=True),
)
OVERRIDE_VALUES = st.one_of(
    st.sampled_from(
        ["0", "-1", "3", "1e9", "true", "null", "[]", "{}", "[1, 2, 3]", "x", "'2'", "!!python/name:os.system"]
    ),
    st.text(max_size=12),
)


@settings(PROFILE)
@given(path=OVERRIDE_PATHS, value=OVERRIDE_VALUES, base=st.sampled_from(["resnet18", "resnet50", "cifar_resnet20"]))
def test_random_overrides_fail_only_with_located_spec_errors(path: str, value: str, base: str) -> None:
    try:
        rg.analyze(rg.load_spec(base, overrides=[f"{path}={value}"]))
    except rg.SpecError as error:
        _check_problems(error)
