"""The model this server is configured with: ``IMAGINEER_MODEL`` read into an engine ModelSource.

The engine takes a ModelSource as an argument and never reads settings; services, selectors,
training and the worker ask here. No torch is imported.
"""

from __future__ import annotations

from django.conf import settings

from generation.engine.source import ModelSource
from generation.engine.source import model_source as source_of


def model_source(model: str | None = None) -> ModelSource:
    """``model`` (default ``IMAGINEER_MODEL``) as a ModelSource; raises ModelSourceError saying why not."""
    return source_of(settings.IMAGINEER_MODEL if model is None else model, tiny_dir=settings.IMAGINEER_TINY_MODEL_DIR)
