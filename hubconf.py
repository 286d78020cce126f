"""torch.hub entry points: every catalog spec by name, and ``from_spec`` for any spec file.

    model = torch.hub.load("path/to/resnet-gen", "resnet50", source="local", num_classes=10)
    model = torch.hub.load("path/to/resnet-gen", "from_spec", "my_net.yaml", source="local")

Keyword arguments are timm's (``num_classes``, ``in_chans``, ``drop_path_rate``, ``drop_rate``,
``global_pool``, ``features_only``, ``out_indices``, ``output_stride``); ``overrides`` takes any
``--set`` path (``{"stages[0].blocks": 2}``), and ``weights`` a local checkpoint to load (nothing
is downloaded).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

dependencies = ["torch", "yaml", "pydantic", "jinja2"]


def _create(
    source: str | Path, overrides: Mapping[str, Any] | None, weights: str | Path | None, kwargs: dict[str, Any]
) -> Any:
    from resnet_gen import build, load_spec, load_weights
    from resnet_gen.factory_kwargs import spec_overrides, with_overrides
    from resnet_gen.unet import is_unet

    if is_unet(source):
        return _create_unet(source, overrides, weights, kwargs)
    spec = load_spec(source, dict(overrides) if overrides else None)
    if kwargs:
        spec = with_overrides(spec, spec_overrides(spec, kwargs, spec.name), "torch.hub.load()")
    model = build(spec)
    if weights is not None:
        load_weights(model, weights)
    return model


def _create_unet(
    source: str | Path, overrides: Mapping[str, Any] | None, weights: str | Path | None, kwargs: dict[str, Any]
) -> Any:
    """A diffusion U-Net: ``overrides`` as for classifiers; timm's keywords do not apply; ``weights``
    is a state_dict file in diffusers' UNet2DModel layout (.pt, .pth or .safetensors), loaded strictly."""
    from resnet_gen.errors import SpecError
    from resnet_gen.unet import build_unet, load_unet

    if kwargs:
        raise SpecError(
            [
                f"{source}: {', '.join(sorted(kwargs))}: timm's keywords are for classifiers; change a U-Net with overrides"
            ]
        )
    model = build_unet(load_unet(source, dict(overrides) if overrides else None))
    if weights is not None:
        from resnet_gen.unet.export import load_state_file

        load_state_file(model, weights)
    return model


def from_spec(
    path: str | Path, overrides: Mapping[str, Any] | None = None, weights: str | Path | None = None, **kwargs: Any
) -> Any:
    """The network of the spec file (or catalog name) ``path``."""
    return _create(path, overrides, weights, kwargs)


def _entry(name: str) -> Callable[..., Any]:
    def create(overrides: Mapping[str, Any] | None = None, weights: str | Path | None = None, **kwargs: Any) -> Any:
        return _create(name, overrides, weights, kwargs)

    create.__name__ = create.__qualname__ = name
    create.__doc__ = f"The catalog spec {name} (specs/{name}.yaml); the arguments are from_spec's."
    return create


def _register_catalog() -> None:
    from resnet_gen import catalog

    for name in catalog.catalog_names():
        globals()[name] = _entry(name)


_register_catalog()
