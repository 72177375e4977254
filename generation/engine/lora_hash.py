"""The hashes a LoRA file is known by: its sha256 (our library key) and A1111's hash.

A1111 (``extensions-builtin/Lora/network.py``) names a LoRA in an infotext's ``Lora hashes``
by the first 12 hex digits of ``sshs_model_hash`` from the file's metadata when kohya wrote
one, else of the "addnet" hash: the sha256 of the file after its safetensors header (the
tensor data alone, so editing metadata does not change it). Both are read in one pass.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from pathlib import Path

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_BLOCK = 1024 * 1024
# A header larger than this is not a LoRA's (the library refuses such files before this runs).
_HEADER_LIMIT = 100 * 1024 * 1024


def lora_file_hashes(path: Path) -> tuple[str, str]:
    """(sha256 of the whole file, A1111's hash) of a ``.safetensors`` file, reading it once."""
    whole, data = hashlib.sha256(), hashlib.sha256()
    metadata_hash = ""
    with Path(path).open("rb") as handle:
        raw_length = handle.read(8)
        whole.update(raw_length)
        length = struct.unpack("<Q", raw_length)[0] if len(raw_length) == 8 else 0
        if 0 < length <= _HEADER_LIMIT:
            header = handle.read(length)
            whole.update(header)
            metadata_hash = _sshs_model_hash(header)
        for block in iter(lambda: handle.read(_BLOCK), b""):
            whole.update(block)
            data.update(block)
    return whole.hexdigest(), metadata_hash or data.hexdigest()


def _sshs_model_hash(header: bytes) -> str:
    try:
        metadata = json.loads(header).get("__metadata__") or {}
    except (ValueError, AttributeError):
        return ""
    value = str(metadata.get("sshs_model_hash", "")).strip().lower() if isinstance(metadata, dict) else ""
    return value if _HEX64.match(value) else ""
