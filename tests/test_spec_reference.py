"""The README's spec field reference: generated from the models, complete, current, torch-free."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, cli_env
from pydantic import BaseModel, Field
from pydantic.fields import FieldInfo

from resnet_gen.blocks.registry import kinds
from resnet_gen.spec.model import BlockSpec, Spec
from resnet_gen.spec.schema import file_schema, spec_schema
from resnet_gen.spec_reference import END, START, reference_sections, render_markdown
from resnet_gen.unet.spec import UNetSpec

Row = tuple[str, str, str]  # type and allowed values, default, description


@pytest.fixture(scope="module")
def reference() -> str:
    return render_markdown(reference_sections())


def _rows(markdown: str) -> dict[str, Row]:
    """The tables' rows as shown: key path -> (type, default, description), read from the Markdown."""
    rows: dict[str, Row] = {}
    for line in markdown.splitlines():
        match = re.fullmatch(r"\| `([^`]+)` \| (.*)", line)
        if match is None:
            continue
        cells = [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", match.group(2))]
        assert len(cells) == 4 and cells[-1] == "", line
        assert match.group(1) not in rows, f"{match.group(1)} listed twice"
        rows[match.group(1)] = (cells[0], cells[1], cells[2])
    return rows


def _marked(text: str) -> str:
    return text.split(START, 1)[1].split(END, 1)[0]


def test_readme_reference_is_current(reference: str) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert _marked(readme) == "\n" + reference, "README.md's field reference is stale: run 'make readme'"
    block = readme.split("<details><summary>Every field</summary>", 1)[1].split("</details>", 1)[0]
    assert START in block and END in block, "the field reference belongs inside the 'Every field' details block"


def _schema_paths(schema: dict[str, Any]) -> list[str]:
    """Every key path of the JSON Schema, models expanded wherever they occur."""
    defs = schema["$defs"]

    def model_of(node: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
        for candidate in (node, *node.get("anyOf", [])):
            if "$ref" in candidate:
                return defs[candidate["$ref"].split("/")[-1]], False
            if "$ref" in candidate.get("items", {}):
                return defs[candidate["items"]["$ref"].split("/")[-1]], True
        return None, False

    def walk(prefix: str, node: dict[str, Any]) -> list[str]:
        out = []
        for name, child in node["properties"].items():
            path = f"{prefix}.{name}" if prefix else name
            out.append(path)
            inner, in_list = model_of(child)
            if inner is not None:
                out += walk(f"{path}[]" if in_list else path, inner)
        return out

    return walk("", schema)


def test_every_field_of_the_schema_is_listed(reference: str) -> None:
    rows = _rows(reference)
    paths = _schema_paths(spec_schema())
    assert len(paths) > 80 and "stages[].block.attention.kernel" in paths
    for path in paths:
        if path in rows:
            continue
        # A model listed elsewhere (a stage's block): the row names where its keys are.
        holder = next((key for key in rows if path.startswith(key + ".")), None)
        assert holder is not None, f"{path} is missing from the field reference"
        home = re.search(r"the keys of `([^`]+)`", rows[holder][0])
        assert home is not None, f"{holder} neither lists nor refers to the keys under it"
        assert home.group(1) + path[len(holder) :] in rows, f"{path}: not listed under {home.group(1)}"
    assert set(rows) <= set(paths), f"keys that are not in the schema: {set(rows) - set(paths)}"
    for key in (
        "stem.kernel",
        "block.attention.divisor",
        "stages[].inner_channels",
        "drop_path",
        "backbone.out_indices",
    ):
        assert key in rows


# The U-Net layout's own keys (layout: unet), found through UNetSpec: required there, and shown
# as "—" at the top level, where a classifier must not have them.
UNET_KEYS = ("layout", "unet")


def _field(path: str) -> tuple[type[BaseModel], str, FieldInfo]:
    """The pydantic model holding ``path`` and its field, found through ``Spec.model_fields``
    (``UNetSpec.model_fields`` for the U-Net's keys)."""
    owner: type[BaseModel] = UNetSpec if path.split(".")[0] in UNET_KEYS else Spec
    *parents, name = path.replace("[]", "").split(".")
    for part in parents:
        annotation = owner.model_fields[part].annotation
        owner = next(arg for arg in _flatten(annotation) if isinstance(arg, type) and issubclass(arg, BaseModel))
    if owner is BlockSpec and name not in owner.model_fields:  # a kind's own option: the first kind with it
        owner = next(kind.options for kind in kinds() if name in kind.options.model_fields)
    return owner, name, owner.model_fields[name]


def _flatten(annotation: Any) -> list[Any]:
    args = getattr(annotation, "__args__", None)
    return [annotation] if not args else [leaf for arg in args for leaf in _flatten(arg)]


def _shown(cell: str) -> Any:
    """A default cell read back as a value: JSON where it parses, else bare text."""
    assert cell.startswith("`") and cell.endswith("`"), cell
    text = cell[1:-1]
    try:
        return json.loads(text)
    except ValueError:
        return text


def test_defaults_shown_are_the_models_defaults(reference: str) -> None:
    rows = _rows(reference)
    checked = 0
    for path, (_, shown, _) in rows.items():
        if path == "extends":  # resolved by the loader, not a model field
            assert shown == "—"
            continue
        owner, name, field = _field(path)
        if path in UNET_KEYS:
            assert field.is_required() and shown == "—", path
            continue
        if field.is_required():
            assert shown == "required", path
            continue
        default = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            assert shown == "the defaults below", path
            assert default == type(default)(), f"{path}: its default is not its keys' defaults"
        else:
            value = _shown(shown)
            assert value == default and type(value) is type(default), f"{path}: shows {shown}, model has {default!r}"
            if all(not info.is_required() for info in owner.model_fields.values()):
                assert getattr(owner(), name) == value, path
        checked += 1
    assert checked > 60
    assert rows["norm.eps"][1] == "`1e-05`" and rows["block.stride_on"][1] == "`3x3`"
    assert rows["description"][1] == '`""`' and rows["head.num_classes"][1] == "`1000`"


def test_descriptions_come_from_the_models(reference: str) -> None:
    rows = _rows(reference)
    for path, (_, _, description) in rows.items():
        if path == "extends":
            continue
        _, _, field = _field(path)
        assert field.description, f"{path} has no description in spec/model.py"
        assert description == " ".join(field.description.split()), path
    # The models' docstrings introduce their sections, their reST literals turned into Markdown code.
    assert "`deep_tiered`: as deep with `3 * (deep_width // 4)` channels" in reference and "``" not in reference


def test_types_and_bounds_are_spelled_out(reference: str) -> None:
    rows = _rows(reference)
    assert rows["stem.pool"][0] == "`max` / `max_zero_pad` / `conv` / `none`"
    assert rows["input.channels"][0] == "integer, 1 ≤ x ≤ 4096"
    assert rows["drop_path"][0] == "number, 0 ≤ x < 1"
    assert rows["block.attention.ratio"][0] == "number, 0 < x ≤ 1 or `null`"
    assert rows["input.size"][0] == "integer, 1 ≤ x ≤ 16384 or list (2 items) of (integer, 1 ≤ x ≤ 16384)"
    assert rows["backbone.out_indices"][0] == "list (1 to 17 items) of (integer, 0 ≤ x ≤ 16) or `null`"
    assert rows["name"][0] == "text, 1 to 80 characters"
    assert rows["init.zero_init_residual"][0] == "`true` / `false`"
    assert rows["stages"][0] == "list (1 to 16 items) of mappings (keys in `stages[]` below)"
    assert rows["stages[].block"][0] == "mapping (the keys of `block`) or `null`"
    headings = [line for line in reference.splitlines() if line.startswith("#### ")]
    assert headings[:6] == [
        "#### Top level",
        "#### `input`",
        "#### `stem`",
        "#### `stem.layers[]`",
        "#### `block`",
        "#### `block.attention`",
    ]


def test_a_new_field_shows_up_without_being_listed() -> None:
    class Extended(Spec):
        extra_knob: int = Field(default=3, ge=0, le=9, description="A field the reference was never told about.")

    rows = _rows(render_markdown(reference_sections(Extended.model_json_schema())))
    assert rows["extra_knob"] == ("integer, 0 ≤ x ≤ 9", "`3`", "A field the reference was never told about.")


def _run(cli: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(cli), *args], cwd=cwd, env=cli_env(), capture_output=True, text=True, check=False)


def test_cli_prints_and_updates_the_reference(cli_path: Path, tmp_path: Path, reference: str) -> None:
    printed = _run(cli_path, "schema", "--markdown", cwd=tmp_path)
    assert printed.returncode == 0 and printed.stdout == reference

    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{START}\nstale\n{END}\n\nmore\n", encoding="utf-8")
    first = _run(cli_path, "schema", "--markdown", "--update", "README.md", cwd=tmp_path)
    assert first.returncode == 0 and first.stdout == "README.md: field reference updated\n"
    written = readme.read_bytes()
    assert written == f"# title\n\n{START}\n{reference}{END}\n\nmore\n".encode()
    again = _run(cli_path, "schema", "--update", "README.md", cwd=tmp_path)
    assert again.returncode == 0 and "already up to date" in again.stdout
    assert readme.read_bytes() == written
    assert json.loads(_run(cli_path, "schema", cwd=tmp_path).stdout) == file_schema()


def test_cli_refuses_bad_targets_without_traceback(cli_path: Path, tmp_path: Path) -> None:
    (tmp_path / "plain.md").write_text("no markers here\n", encoding="utf-8")
    missing = _run(cli_path, "schema", "--update", "plain.md", cwd=tmp_path)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        f"error: plain.md: needs exactly one '{START}' line followed by one '{END}' line"
    ]
    assert (tmp_path / "plain.md").read_text(encoding="utf-8") == "no markers here\n"
    mixed = _run(cli_path, "schema", "-o", "out.md", "--update", "plain.md", cwd=tmp_path)
    assert mixed.returncode == 2 and "Traceback" not in mixed.stderr and not (tmp_path / "out.md").exists()


def test_rendering_the_reference_does_not_import_torch() -> None:
    code = (
        "import sys; from resnet_gen.spec_reference import reference_sections, render_markdown; "
        "render_markdown(reference_sections()); assert 'torch' not in sys.modules, 'torch imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
