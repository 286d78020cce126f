"""What loading a checkpoint did, key by key."""

from __future__ import annotations

from dataclasses import dataclass


class WeightsError(ValueError):
    """A checkpoint cannot be read, or does not fit the network."""


@dataclass(frozen=True)
class WeightsReport:
    """``loaded``: model keys filled as stored. ``adapted``: model keys filled from a changed tensor,
    with how. ``skipped``: checkpoint keys not used, with why. ``missing``: model keys the checkpoint
    did not fill (they keep their initialisation)."""

    source: str
    layout: str
    loaded: tuple[str, ...]
    adapted: tuple[tuple[str, str], ...]
    skipped: tuple[tuple[str, str], ...]
    missing: tuple[str, ...]

    def __str__(self) -> str:
        """``print(report)`` shows the summary ``resnet-gen weights`` prints, not every key's repr."""
        return self.render()

    def render(self, *, verbose: bool = False) -> str:
        """The report as text: counts, then every adapted, skipped and missing key."""
        lines = [
            f"checkpoint: {self.source}",
            f"layout:     {self.layout}",
            f"loaded:     {len(self.loaded)} tensors",
        ]
        if verbose:
            lines += [f"  {key}" for key in self.loaded]
        lines.append(f"adapted:    {len(self.adapted)}")
        lines += [f"  {key}: {how}" for key, how in self.adapted]
        lines.append(f"skipped:    {len(self.skipped)}")
        lines += [f"  {key}: {why}" for key, why in self.skipped]
        lines.append(
            f"missing:    {len(self.missing)}" + (" (these keep their initialisation)" if self.missing else "")
        )
        lines += [f"  {key}" for key in self.missing]
        return "\n".join(lines)
