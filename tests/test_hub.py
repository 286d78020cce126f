"""torch.hub on the checkout (``source="local"``, no network): every catalog spec by name, the
generic ``from_spec``, timm's keyword arguments, ``--set`` overrides and local weights."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torchvision
from conftest import ALL_SPECS, ROOT
from torch_helpers import randomize

from resnet_gen import build, load_spec


def test_hubconf_offers_every_catalog_spec() -> None:
    # torch.hub lists a repository's public callables: read them off the file it imports.
    loader = importlib.util.spec_from_file_location("hubconf", ROOT / "hubconf.py")
    assert loader is not None and loader.loader is not None
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    offered = {name for name in dir(module) if callable(getattr(module, name)) and not name.startswith("_")}
    assert set(ALL_SPECS) | {"from_spec"} <= offered
    assert {"torch", "yaml", "pydantic"} <= set(module.dependencies)


def test_load_by_name_with_timm_keywords() -> None:
    model = torch.hub.load(str(ROOT), "resnet50", source="local", num_classes=10, in_chans=1)
    reference = build(load_spec("resnet50", {"head.num_classes": 10, "input.channels": 1}))
    assert model.plan == reference.plan
    assert model(torch.randn(2, 1, 64, 64)).shape == (2, 10)


def test_from_spec_with_overrides_and_local_weights(tmp_path: Path) -> None:
    source = torchvision.models.resnet18()
    randomize(source, seed=2)
    weights = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), weights)
    spec_file = tmp_path / "net.yaml"
    spec_file.write_text("extends: resnet18\nhead: {num_classes: 1000}\n")
    model = torch.hub.load(str(ROOT), "from_spec", str(spec_file), source="local", weights=str(weights))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), source.eval()(x), rtol=0, atol=1e-5)
    shallow = torch.hub.load(str(ROOT), "resnet18", source="local", overrides={"stages[0].blocks": 1})
    assert len(shallow.layer1) == 1


def test_bad_keyword_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match=r"resnet18: got colour, which resnet-gen specs do not take"):
        torch.hub.load(str(ROOT), "resnet18", source="local", colour="red")
