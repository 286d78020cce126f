"""The plan: the one intermediate form all back ends read."""

from .lower import lower
from .types import BlockPlan, HeadPlan, Plan, StagePlan

__all__ = ["BlockPlan", "HeadPlan", "Plan", "StagePlan", "lower"]
