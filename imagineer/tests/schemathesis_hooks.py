"""A check schemathesis runs beside its own (``SCHEMATHESIS_HOOKS=imagineer.tests.schemathesis_hooks``).

Every error answer of the API must be the one error body, ``{"error": {"code", "message",
"fields"}}`` as JSON: a client handles every failure the same way.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis


@schemathesis.check
def error_body_shape(ctx: Any, response: Any, case: Any) -> None:
    if response.status_code < 400:
        return
    content_type = (response.headers.get("content-type") or [""])[0]
    if not content_type.startswith("application/json"):
        raise AssertionError(
            f"{response.status_code} answered as {content_type or 'no content type'}, not the JSON error body"
        )
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(f"{response.status_code} answered with a body that is not JSON") from None
    error = body.get("error") if isinstance(body, dict) else None
    if not (
        isinstance(error, dict)
        and isinstance(error.get("code"), str)
        and isinstance(error.get("message"), str)
        and error["message"]
        and isinstance(error.get("fields"), dict)
    ):
        raise AssertionError(f"{response.status_code} body is not the error shape: {response.content[:300]!r}")
