"""The diffusers engine.

Only ``runtime``, ``tiny``, ``lora_make``, ``checkpoint`` and ``execute`` import torch or
diffusers, and only the gpu worker, management commands and tests import those. ``source``,
``lora_files``, ``schedulers`` and ``png`` are light: the web process uses them to validate
input and to describe the model without paying for torch.
"""
