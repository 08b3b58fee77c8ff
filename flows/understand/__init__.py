"""The understanding step: a message and its context → an intent with typed slots (see types)."""

from .core import THRESHOLD, understand
from .types import LAST, Context, Intent, Slots, Understanding
from .vocab import Vocabulary

__all__ = ["LAST", "THRESHOLD", "Context", "Intent", "Slots", "Understanding", "Vocabulary", "understand"]
