"""The fingerprint of a resolved spec, which emitted headers show and the plan carries."""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel


def spec_hash(spec: BaseModel) -> str:
    """sha256 of the resolved spec (after extends and overrides) as canonical JSON."""
    data = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(data.encode("ascii")).hexdigest()
