"""Generation test fixtures: the tiny model, built once per test session."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _use_tiny_model(settings, tiny_model_dir):
    """Every generation test (and every worker it starts, via worker_env) uses the session's tiny model."""
    settings.IMAGINEER_MODEL = ""
    settings.IMAGINEER_TINY_MODEL_DIR = tiny_model_dir
    settings.IMAGINEER_SCHEDULER = "dpmsolver++"
    settings.IMAGINEER_TORCH_THREADS = 1
    return tiny_model_dir


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    """An engine in the test process (no worker), loaded once per module."""
    import torch

    from generation.engine.runtime import Engine
    from generation.engine.source import ModelSource

    # One thread: several test processes share this CPU, and OpenMP spinning is ruinous then.
    torch.set_num_threads(1)
    source = ModelSource(kind="tiny", location=str(tiny_model_dir), model_id="imagineer/tiny-sd15-random")
    return Engine(source, device="cpu", dtype="fp32", batch_size=4).load()
