"""The understanding step: a message and its context → an intent with typed slots (see types)."""
