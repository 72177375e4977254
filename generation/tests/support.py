"""Helpers shared by the generation tests."""

from __future__ import annotations

import numpy as np

# Every gpu worker these tests start: one torch thread, since several test processes share
# this CPU and OpenMP threads spinning against each other are many times slower.
WORKER_ENV = {"IMAGINEER_TORCH_THREADS": "1"}


def pixel_difference(first, second) -> int:
    """The largest per-channel difference between two PIL images (0..255)."""
    return int(np.abs(np.asarray(first, dtype=np.int16) - np.asarray(second, dtype=np.int16)).max())
