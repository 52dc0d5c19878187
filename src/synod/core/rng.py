"""Seeded random generators for state machines (DESIGN.md section 1).

A system folder never imports ``random``: global randomness would make
replicas (and replays) differ. A state machine that must choose (Redis's
RANDOMKEY, HRANDFIELD) takes a generator seeded from its replicated state,
so every replica makes the same choice; nodes use ``ctx.rng``.
"""

from __future__ import annotations

import random

__all__ = ["seeded_rng", "Rng"]

Rng = random.Random  # the generator's type, for annotations


def seeded_rng(seed: int | str | bytes) -> random.Random:
    """A ``random.Random`` seeded with ``seed`` (the same seed gives the
    same sequence on every machine and Python run)."""
    return random.Random(seed)
