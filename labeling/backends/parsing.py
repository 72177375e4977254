"""Turning what the Claude CLI printed into a LabelResult, strictly and forgivingly at once.

Accepted: the CLI's ``--output-format json`` envelope (an object, or a list of messages ending in
a ``result`` message) whose ``result`` text holds our JSON object, bare or in a code fence or
surrounded by prose; or our JSON object printed directly. Anything else is a LabelParseError
that keeps the raw response.
"""

from __future__ import annotations

import json
import re
from typing import Any

from labeling.backends.base import MAX_TAGS, NSFW_RATINGS, LabelError, LabelParseError, TransientLabelError

_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.DOTALL)
# Text that means "try again later" rather than "this image cannot be labelled".
_TRANSIENT = re.compile(
    r"rate[ _-]?limit|too many requests|\b429\b|\b529\b|overloaded|usage limit|timed? ?out|"
    r"temporarily unavailable|ECONNRESET|ETIMEDOUT|EAI_AGAIN|socket hang up",
    re.IGNORECASE,
)


def is_transient_text(text: str) -> bool:
    return bool(_TRANSIENT.search(text))


def tags_normalise(tags: Any) -> list[str]:
    """Lowercase, trimmed, inner whitespace collapsed, deduplicated in order, at most MAX_TAGS."""
    if isinstance(tags, str):
        tags = tags.split(",")
    if not isinstance(tags, list):
        return []
    seen: list[str] = []
    for tag in tags:
        if not isinstance(tag, str | int | float) or isinstance(tag, bool):
            continue
        text = " ".join(str(tag).strip().strip("#").lower().split())[:100]
        if text and text not in seen:
            seen.append(text)
        if len(seen) == MAX_TAGS:
            break
    return seen


def _envelope_unwrap(data: Any) -> tuple[Any, str | None]:
    """(payload, model) from the CLI's JSON output; a non-envelope is returned unchanged."""
    model = None
    if isinstance(data, list):
        for message in data:
            if isinstance(message, dict) and message.get("type") == "system" and message.get("model"):
                model = str(message["model"])
        results = [m for m in data if isinstance(m, dict) and m.get("type") == "result"]
        if not results:
            return data, model
        data = results[-1]
    if not (isinstance(data, dict) and data.get("type") == "result" and "result" in data):
        return data, model
    usage = data.get("modelUsage")
    if isinstance(usage, dict) and usage:
        # The model that wrote the answer is the one with the most output tokens.
        model = max(
            usage, key=lambda name: (usage[name] or {}).get("outputTokens", 0) if isinstance(usage[name], dict) else 0
        )
    elif data.get("model"):
        model = str(data["model"])
    text = data.get("result")
    if data.get("is_error") or data.get("subtype", "success") != "success":
        message = f"Claude CLI reported an error: {str(text)[:500]}"
        raise (TransientLabelError if is_transient_text(str(text)) else LabelError)(
            message, raw_response=json.dumps(data)
        )
    return (text if isinstance(text, str) else json.dumps(text)), model


def _json_object_find(text: str) -> dict | None:
    """The first JSON object in ``text``: the whole text, a fenced block, or one inside prose."""
    stripped = text.strip()
    candidates = [stripped, *(block.strip() for block in _FENCE.findall(text))]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def response_parse(raw: str, prompt_type: str) -> tuple[dict, str | None]:
    """({"caption", "nsfw_rating", "tags"}, model name if the CLI said) or LabelParseError."""
    if not raw.strip():
        raise LabelParseError("Claude CLI printed nothing.", raw_response=raw)
    payload: Any = raw
    model = None
    try:
        payload, model = _envelope_unwrap(json.loads(raw))
    except ValueError:
        payload = raw
    if isinstance(payload, str):
        found = _json_object_find(payload)
        if found is None:
            raise LabelParseError(
                "Claude's answer holds no JSON object; expected {description, nsfw_rating, tags}.", raw_response=raw
            )
        payload = found
    if not isinstance(payload, dict):
        raise LabelParseError("Claude's answer is JSON but not an object.", raw_response=raw)
    keys = ("caption", "description") if prompt_type == "sd_training" else ("description", "caption")
    caption = next((payload[key] for key in keys if isinstance(payload.get(key), str) and payload[key].strip()), None)
    if caption is None:
        raise LabelParseError(f"Claude's JSON has no {keys[0]!r} text.", raw_response=raw)
    rating = payload.get("nsfw_rating")
    if rating is not None:
        rating = str(rating).strip().upper()
        if rating not in NSFW_RATINGS:
            raise LabelParseError(
                f"Claude's nsfw_rating {rating!r} is not one of {', '.join(NSFW_RATINGS)}.", raw_response=raw
            )
    elif prompt_type == "default":
        raise LabelParseError("Claude's JSON has no nsfw_rating.", raw_response=raw)
    return {"caption": caption.strip(), "nsfw_rating": rating, "tags": tags_normalise(payload.get("tags"))}, model
