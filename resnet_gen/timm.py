"""Spec-made networks in timm's model registry, so ``timm.create_model`` builds them.

``register(spec_or_path)`` files a spec under a name; ``timm.create_model(name, num_classes=10,
in_chans=1, drop_path_rate=0.1, features_only=True, out_indices=(1, 2), output_stride=16)`` then
returns the live network of that spec with those keyword arguments applied as spec overrides
(the network ``--set`` would give), and ``pretrained=True`` with
``pretrained_cfg_overlay={"file": "local.pth"}`` loads local weights through ``load_weights``
(first conv adapted to ``in_chans``, a classifier of another size skipped). Nothing is downloaded.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import timm
from timm.models import register_model

from . import catalog
from .compile import load_spec
from .factory_kwargs import spec_overrides, with_overrides
from .plan import lower
from .spec import Spec

ENTRYPOINT_MODULE = "resnet_gen.timm_entrypoints"
_registered: dict[str, Callable[..., Any]] = {}


def _local_file(name: str, pretrained_cfg: Any, overlay: Mapping[str, Any] | None) -> str:
    file = (overlay or {}).get("file")
    if file is None and pretrained_cfg is not None:
        file = (
            pretrained_cfg.get("file") if isinstance(pretrained_cfg, Mapping) else getattr(pretrained_cfg, "file", None)
        )
    if not file:
        raise ValueError(
            f"{name}: pretrained=True needs a local weights file: pass pretrained_cfg_overlay={{'file': 'weights.pth'}}"
            " (resnet-gen never downloads weights)"
        )
    return str(file)


def _entrypoint(spec: Spec, name: str) -> Callable[..., Any]:
    def create(
        pretrained: bool = False,
        pretrained_cfg: Any = None,
        pretrained_cfg_overlay: Mapping[str, Any] | None = None,
        cache_dir: Any = None,
        **kwargs: Any,
    ) -> Any:
        from .live import build
        from .weights.load import load_weights

        built = with_overrides(spec, spec_overrides(spec, kwargs, name), "timm.create_model()") if kwargs else spec
        model = build(lower(built))
        if pretrained:
            file = _local_file(name, pretrained_cfg, pretrained_cfg_overlay)
            load_weights(model, file)
            model.pretrained_cfg = {**model.pretrained_cfg, **(pretrained_cfg_overlay or {}), "file": file}
            model.default_cfg = model.pretrained_cfg
        return model

    create.__name__ = create.__qualname__ = name
    create.__module__ = ENTRYPOINT_MODULE
    create.__doc__ = f"{name}: {spec.description or 'a resnet-gen spec'} (registered by resnet_gen.timm)"
    return create


def register(spec_or_path: Spec | str | Path, name: str | None = None) -> str:
    """Register a spec (a :class:`Spec`, a spec file or a catalog name) with timm under ``name``
    (the spec's own name by default); returns the name. A name timm already has for one of its
    own models is refused: pass another (``name="rg_resnet50"``)."""
    spec = spec_or_path if isinstance(spec_or_path, Spec) else load_spec(spec_or_path)
    name = name or spec.name
    if not name.isidentifier():
        raise ValueError(f"model name {name!r} is not a Python identifier")
    if timm.is_model(name) and name not in _registered:
        raise ValueError(f"timm already has a model named {name!r}; register this spec under another name")
    __import__(ENTRYPOINT_MODULE)
    module = sys.modules[ENTRYPOINT_MODULE]
    create = _entrypoint(spec, name)
    setattr(module, name, create)
    _registered[name] = create
    register_model(create)
    return name


def register_all(sources: Iterable[Spec | str | Path], prefix: str = "") -> list[str]:
    """Register every spec of ``sources`` under ``prefix`` + its name; returns the names."""
    out = []
    for source in sources:
        spec = source if isinstance(source, Spec) else load_spec(source)
        out.append(register(spec, prefix + spec.name))
    return out


def register_catalog(prefix: str = "rg_") -> list[str]:
    """Every catalog classifier, as ``rg_resnet50`` and so on (timm has most of the plain names
    already). The diffusion U-Nets are left out: timm's registry and ``create_model``'s keywords
    (num_classes, global_pool, features_only) are a classifier's."""
    from .unet import is_unet

    return register_all([name for name in catalog.catalog_names() if not is_unet(name)], prefix)


def register_folder(folder: str | Path, prefix: str = "") -> list[str]:
    """Every classifier ``*.yaml`` spec in ``folder`` (sorted by name); U-Nets are left out, as
    :func:`register_catalog` leaves them out."""
    from .unet import is_unet

    path = Path(folder)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: not a folder of spec files")
    return register_all([spec for spec in sorted(path.glob("*.yaml")) if not is_unet(spec)], prefix)
