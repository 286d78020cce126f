"""A spec's ``reference`` block against the network it makes: each number the block cites
(parameters, GMACs) compared with ours. validate, info, the catalog table and the gallery all
judge a spec by this."""

from __future__ import annotations

from decimal import Decimal

from .spec.model import ReferenceSpec


def reference_checks(reference: ReferenceSpec | None, params: int, macs: int) -> list[tuple[str, bool, str]]:
    """Each number the reference states, compared with ours: (``params`` or ``GMACs``, whether it
    matches, the stated value as written). Parameters exactly, GMACs to the decimals published."""
    if reference is None:
        return []
    out = []
    if reference.params is not None:
        out.append(("params", reference.params == params, f"{reference.params:,}"))
    if reference.gmacs is not None:
        decimals = max(0, -int(Decimal(repr(reference.gmacs)).as_tuple().exponent))
        out.append(("GMACs", round(macs / 1e9, decimals) == reference.gmacs, f"{reference.gmacs}"))
    return out


def reference_mismatches(reference: ReferenceSpec | None, params: int, macs: int) -> list[str]:
    """The numbers that differ from the cited ones, each with the cited value."""
    return [
        f"{label} (reference {stated})" for label, same, stated in reference_checks(reference, params, macs) if not same
    ]
