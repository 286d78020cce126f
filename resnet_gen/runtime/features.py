"""timm's ``feature_info``: what each feature map of a network is (no torch needed)."""

from __future__ import annotations

from typing import Any


class FeatureInfo(list[dict[str, Any]]):
    """One dict per feature map (``num_chs``, ``reduction``, ``module``, ``index``), with timm's
    accessors: ``channels()``, ``reduction()``, ``module_name()``, ``get(key)`` and
    ``get_dicts()``, each for every feature or at ``idx`` (one position or a list of them)."""

    def get(self, key: str, idx: int | list[int] | tuple[int, ...] | None = None) -> Any:
        if idx is None:
            return [info[key] for info in self]
        if isinstance(idx, (list, tuple)):
            return [self[i][key] for i in idx]
        return self[idx][key]

    def get_dicts(self, keys: list[str] | None = None, idx: int | list[int] | tuple[int, ...] | None = None) -> Any:
        def pick(info: dict[str, Any]) -> dict[str, Any]:
            return info if keys is None else {key: info[key] for key in keys}

        if idx is None:
            return [pick(info) for info in self]
        if isinstance(idx, (list, tuple)):
            return [pick(self[i]) for i in idx]
        return pick(self[idx])

    def channels(self, idx: int | list[int] | tuple[int, ...] | None = None) -> Any:
        return self.get("num_chs", idx)

    def reduction(self, idx: int | list[int] | tuple[int, ...] | None = None) -> Any:
        return self.get("reduction", idx)

    def module_name(self, idx: int | list[int] | tuple[int, ...] | None = None) -> Any:
        return self.get("module", idx)
