"""The schema editors check spec files against (`resnet-gen schema`, named on every spec's first line)
accepts every file the loader accepts as it stands (before `extends` and the shorthands are
resolved) and still flags what the loader refuses for a single key: unknown keys, bounds, enums."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError

import resnet_gen as rg
from resnet_gen import catalog
from resnet_gen.cli import main
from resnet_gen.spec.schema import file_schema
from resnet_gen.unet import load_unet

SPECS = sorted(catalog.specs_dir().glob("*.yaml"))
BAD = Path(__file__).resolve().parent / "bad_specs"

# Corpus cases prefixed key_, range_ and type_ break one key on its own; the schema must flag that
# key, except where JSON Schema cannot say it.
NOT_SCHEMA_DETECTABLE = {
    "range_dropout_nan": "NaN compares false with every bound, so minimum/maximum let it through",
    "range_widths_not_divisible_by_groups": "depends on the block's groups, another key",
    "range_gmacs_infinite": "JSON has no infinity; a bound would be a limit the field does not have",
    "range_gmacs_nan": "NaN compares false with every bound, so minimum/maximum let it through",
    "range_inner_width_groups": "a product of groups and the stages' widths, other keys",
    "range_inner_width_per_group": "a product of width_per_group and the stages' widths, other keys",
    "range_inner_width_stage_block": "a product of a stage's groups and its width, another key",
    "range_stem_width_factor": "a product of width_factor and the stem's width, another key",
    "range_total_params": "the parameter count depends on every width and block count",
    "range_total_params_width_factor": "the parameter count depends on every width and block count",
}
# Cases with other prefixes that also break a single key's type, bound or enum.
ALSO_SCHEMA_DETECTABLE = [
    "attack_billion_blocks",
    "attack_input_size",
    "attack_num_classes",
    "attack_width_2_40",
    "combo_description_too_long",
    "combo_output_stride_4",
    "extends_child_breaks_parent",
    "extends_number",
    "extends_parent_with_typo",
]
SINGLE_KEY_CASES = sorted(
    {path.stem for path in BAD.glob("*.yaml") if path.stem.split("_")[0] in ("key", "range", "type")}
    - set(NOT_SCHEMA_DETECTABLE)
    | set(ALSO_SCHEMA_DETECTABLE)
)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return file_schema()


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema)


def _read(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_is_a_valid_draft_2020_12_schema(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_cli_writes_it_byte_for_byte_the_same(tmp_path: Path) -> None:
    for target in ("a.json", "b.json"):
        main(["schema", "-o", str(tmp_path / target)])
    first = (tmp_path / "a.json").read_bytes()
    assert first == (tmp_path / "b.json").read_bytes()
    assert json.loads(first) == file_schema()


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_every_shipped_spec_file_is_valid(path: Path, validator: Draft202012Validator) -> None:
    problems = [f"{_key_path(error)}: {error.message}" for error in validator.iter_errors(_read(path))]
    assert problems == []


def test_shipped_specs_use_what_the_schema_relaxes() -> None:
    """The catalog exercises every relaxation: files without a name, children without stages, and shorthands."""
    files = [_read(path) for path in SPECS]
    assert sum("name" not in data for data in files) > 100
    assert sum("extends" in data and "stages" not in data for data in files) > 50
    assert any(isinstance(data.get("shortcut"), str) for data in files)
    assert any(isinstance(data.get("norm"), str) for data in files)
    assert any(isinstance(data.get("block", {}).get("attention"), str) for data in files)


def test_every_key_range_and_type_case_is_a_case_here() -> None:
    assert set(NOT_SCHEMA_DETECTABLE) <= {path.stem for path in BAD.glob("*.yaml")}
    assert len(SINGLE_KEY_CASES) >= 40


@pytest.mark.parametrize("name", SINGLE_KEY_CASES)
def test_bad_spec_is_rejected_at_the_key_the_loader_names(name: str, validator: Draft202012Validator) -> None:
    expected = (BAD / f"{name}.expected").read_text(encoding="utf-8").splitlines()
    data = _read(BAD / f"{name}.yaml")
    loader_keys = {_as_written(line.split(": ")[1], data) for line in expected}
    errors = list(validator.iter_errors(data))
    assert errors, f"{name}: the schema accepts what the loader refuses: {expected}"
    flagged = {_key_path(error) for error in _with_context(errors)}
    assert loader_keys <= flagged, f"{name}: loader names {loader_keys}, schema flags {flagged}"


def _as_written(key: str, data: dict[str, Any]) -> str:
    """The loader names a bad shorthand (``norm: batchnorm``) by its type (``norm.type``); the file says ``norm``."""
    parent, _, last = key.rpartition(".")
    return parent if last == "type" and isinstance(data.get(parent), str) else key


def _with_context(errors: list[SchemaError]) -> Iterator[SchemaError]:
    """Errors and, for anyOf, the errors of each alternative (where the precise key is named)."""
    for error in errors:
        yield error
        yield from _with_context(list(error.context or ()))


def _key_path(error: SchemaError) -> str:
    """The key an error is about, written as the loader writes it (``stages[1].strid``)."""
    path: list[str | int] = list(error.absolute_path)
    instance = error.instance
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        known = error.schema.get("properties", {})
        path.append(sorted(key for key in instance if key not in known)[0])
    elif error.validator == "required" and isinstance(instance, dict):
        path.append(next(key for key in error.validator_value if key not in instance))
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


# --- shorthands: a name for {type: name}, as files and --set write them ---


def _shorthand_sites(schema: dict[str, Any]) -> dict[str, list[str]]:
    """Dotted path -> names, for every key the schema lets hold a model or one of its names."""
    defs = schema["$defs"]
    found: dict[str, list[str]] = {}

    def walk(prefix: str, model: dict[str, Any], seen: tuple[str, ...]) -> None:
        for key, node in model.get("properties", {}).items():
            path = f"{prefix}.{key}" if prefix else key
            members = node.get("anyOf", [node])
            names = [name for member in members for name in member.get("enum", ())]
            for member in members:
                ref = member.get("$ref") or member.get("items", {}).get("$ref")
                if ref and ref not in seen:
                    child = f"{path}[0]" if "items" in member else path
                    walk(child, defs[ref.rsplit("/", 1)[-1]], (*seen, ref))
                    if names:
                        found[path] = names

    walk("", schema, ())
    return found


def test_shorthand_sites_are_the_ones_the_models_document(schema: dict[str, Any]) -> None:
    """The fields whose descriptions say 'a type name is short for {type: ...}' (model.py)."""
    assert set(_shorthand_sites(schema)) == {
        "norm",
        "conv",
        "shortcut",
        "anti_alias",
        "block.attention",
        "stages[0].block.attention",
        "head",
        "head.decoder",
        "unet.downsample",  # the U-Net layout's (resnet_gen/unet/spec.py)
    }


def _shorthand_cases() -> list[tuple[str, str]]:
    return [(site, name) for site, names in sorted(_shorthand_sites(file_schema()).items()) for name in names]


@pytest.mark.parametrize(("site", "name"), _shorthand_cases(), ids=lambda value: str(value))
def test_each_shorthand_the_schema_offers_loads_as_its_mapping(site: str, name: str) -> None:
    """``--set norm=group`` is ``--set norm={type: group}`` (aliases resolved), as the schema promises."""
    load = load_unet if site.startswith("unet.") else rg.load_spec
    parent = "unet_tiny" if site.startswith("unet.") else "resnet50"
    base = ["head.type=segmentation"] if site.startswith("head.") else []  # a decoder needs a segmentation head
    short = load(parent, overrides=[*base, f"{site}={name}"])
    full = load(parent, overrides=[*base, f"{site}={{type: {name}}}"])
    assert short == full


@pytest.mark.parametrize(
    ("site", "name"),
    [("stem", "deep"), ("block", "bottleneck"), ("head", "avg"), ("init", "kaiming"), ("stages[0]", "bottleneck")],
)
def test_keys_without_a_shorthand_refuse_a_name_in_both(site: str, name: str, validator: Draft202012Validator) -> None:
    data: dict[str, Any] = {"stages": [{"blocks": 1, "width": 8}]}
    if site == "stages[0]":
        data["stages"] = [name]
    else:
        data[site] = name
    assert not validator.is_valid(data)
    with pytest.raises(rg.SpecError):
        rg.load_spec("resnet50", overrides=[f"{site}={name}"])


@pytest.mark.parametrize(
    "text",
    [
        "shortcut: avg_down",
        "shortcut: D",
        "shortcut: {type: D, kernel: 3}",
        "norm: batch",
        "norm: frn",
        "conv: weight_standardized",
        "anti_alias: blur",
        "block: {attention: se}",
        "block: {attention: {type: eca, kernel: 5}}",
        "block: {type: bottleneck}\nstages: [{blocks: 1, width: 64, block: {attention: eca}}]",
    ],
)
def test_shorthands_in_a_file_pass_both(text: str, tmp_path: Path, validator: Draft202012Validator) -> None:
    data = yaml.safe_load(text)
    data.setdefault("stages", [{"blocks": 1, "width": 64}])
    assert validator.is_valid(data), text
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    rg.load_spec(path)


@pytest.mark.parametrize("text", ["norm: batchnorm", "shortcut: E", "block: {attention: cbam}", "anti_alias: max"])
def test_unknown_names_fail_both(text: str, tmp_path: Path, validator: Draft202012Validator) -> None:
    data = {**yaml.safe_load(text), "stages": [{"blocks": 1, "width": 64}]}
    assert not validator.is_valid(data)
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(rg.SpecError):
        rg.load_spec(path)


# --- what a parent supplies ---


PARENT = "block: {type: bottleneck, attention: {type: se, reduction: 16}}\nanti_alias: {type: blur}\nstages: [{blocks: 1, width: 64, stride: 2}]\nreference: {source: somewhere, params: 1}\n"


@pytest.mark.parametrize(
    "child",
    [
        "block: {attention: {reduction: 8}}",
        "anti_alias: {filter_size: 5}",
        "stages: [{blocks: 2, width: 64, block: {attention: {divisor: 4}}}]",
        "description: nothing else changes",
    ],
)
def test_a_child_may_leave_out_what_its_parent_gives(
    child: str, tmp_path: Path, validator: Draft202012Validator
) -> None:
    (tmp_path / "parent.yaml").write_text(PARENT, encoding="utf-8")
    (tmp_path / "child.yaml").write_text(f"extends: parent\n{child}\n", encoding="utf-8")
    assert validator.is_valid(_read(tmp_path / "child.yaml"))
    assert rg.load_spec(tmp_path / "child.yaml").name == "child"


@pytest.mark.parametrize(
    ("child", "key"),
    [
        ("reference: {params: 5}", "reference.source"),  # reference is not inherited
        ("stages: [{width: 64}]", "stages[0].blocks"),  # a list replaces the parent's whole
    ],
)
def test_what_no_parent_gives_stays_required(
    child: str, key: str, tmp_path: Path, validator: Draft202012Validator
) -> None:
    (tmp_path / "parent.yaml").write_text(PARENT, encoding="utf-8")
    (tmp_path / "child.yaml").write_text(f"extends: parent\n{child}\n", encoding="utf-8")
    errors = list(validator.iter_errors(_read(tmp_path / "child.yaml")))
    assert len(errors) == 1
    assert key in {_key_path(error) for error in _with_context(errors)}
    with pytest.raises(rg.SpecError, match=re.escape(f": {key}: required key is missing")):
        rg.load_spec(tmp_path / "child.yaml")


def test_a_file_without_extends_needs_its_stages(tmp_path: Path, validator: Draft202012Validator) -> None:
    data = {"block": {"type": "bottleneck"}}
    assert [_key_path(error) for error in validator.iter_errors(data)] == ["stages"]
    assert validator.is_valid({**data, "extends": "resnet50"})
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(rg.SpecError, match="stages: required key is missing"):
        rg.load_spec(path)


def test_the_committed_schema_is_the_languages() -> None:
    """The file every spec's first line points editors at is committed, so a fresh clone has it,
    and it is what ``resnet-gen schema`` writes today (``make readme`` rewrites it)."""
    committed = ROOT / "resnet-gen.schema.json"
    assert committed.read_text(encoding="utf-8") == json.dumps(file_schema(), indent=2, sort_keys=True) + "\n"
