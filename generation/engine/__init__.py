"""The diffusers engine: it knows no Django (no models, services or settings).

Requests, the model source and hardware options come in as arguments; progress goes out
through a callback. ``generation.worker`` does the database and file work around it
(``imagineer/tests/test_import_graph.py`` holds the line).

Only ``runtime``, ``tiny``, ``lora_make`` and ``checkpoint`` import torch or diffusers, and
only the gpu worker, management commands and tests import those. ``source``,
``lora_files``, ``schedulers`` and ``png`` are light: the web process uses them to validate
input and to describe the model without paying for torch.
"""
