"""A1111-style ``parameters`` text chunk: written into every PNG and parsed back.

Format (what AUTOMATIC1111 and the tools around it read):

    <prompt>
    Negative prompt: <negative>
    Steps: 25, Sampler: DPM++ 2M, CFG scale: 8.0, Seed: 42, Size: 512x512, Model hash: 0123abcd45,
    Model: name, Lora hashes: "a: 0123abcd4567, b: ...", ...
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_FIELD = re.compile(r'\s*([\w ]+):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')


def parameters_build(
    *,
    prompt: str,
    negative_prompt: str,
    fields: Mapping[str, Any],
) -> str:
    parts = []
    for key, value in fields.items():
        if value is None or value == "":
            continue
        text = str(value)
        if any(char in text for char in ',:"'):
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        parts.append(f"{key}: {text}")
    lines = [prompt.replace("\n", " ")]
    if negative_prompt:
        lines.append("Negative prompt: " + negative_prompt.replace("\n", " "))
    lines.append(", ".join(parts))
    return "\n".join(lines)


def parameters_parse(text: str) -> dict[str, Any]:
    """The inverse of ``parameters_build``: {"prompt", "negative_prompt", "fields": {...}}."""
    lines = text.split("\n")
    settings_line = lines[-1] if len(lines) > 1 and _FIELD.match(lines[-1]) else ""
    body = lines[:-1] if settings_line else lines
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    in_negative = False
    for line in body:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:") :].strip()
        (negative_lines if in_negative else prompt_lines).append(line)
    fields: dict[str, str] = {}
    for match in _FIELD.finditer(settings_line):
        key, value = match.group(1).strip(), match.group(2).strip()
        if not key:
            continue
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        fields[key] = value
    return {"prompt": "\n".join(prompt_lines), "negative_prompt": "\n".join(negative_lines), "fields": fields}
