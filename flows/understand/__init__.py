"""The understanding step: a message and its context → an intent with typed slots (see types)."""

from .core import THRESHOLD, understand
from .types import Context, Intent, Slots, Understanding
from .vocab import Vocabulary

__all__ = ["THRESHOLD", "Context", "Intent", "Slots", "Understanding", "Vocabulary", "understand"]
