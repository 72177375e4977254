"""REST pieces every API view shares: the error body in the schema, helpers."""

from __future__ import annotations

from typing import Any, Literal, cast

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. invalid, not_found, not_authenticated.")
    message = serializers.CharField(help_text="What went wrong and what to do about it.")
    # The body's key is "fields"; DRF's metaclass takes declared fields off the class, so the
    # Serializer.fields property it shadows here is untouched at run time.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages by input field (dotted for nested fields); empty when no field is at fault.",
    )


class ErrorSerializer(serializers.Serializer):
    """The one error body: validation, domain and permission errors alike."""

    error = ErrorDetailSerializer()


_ERRORS = {
    "400": "Bad input: `error.fields` names each field to fix.",
    "401": "Not signed in: send a session cookie or `Authorization: Token <key>`.",
    "403": "Signed in, but your role does not allow this.",
    "404": "No such object (or page).",
}
# Writes that start work may meet the per-user limits on queued work (imagineer/limits.py).
_WRITE_ERRORS = {"429": "Too much of your work is queued or running; `Retry-After` says when to try again."}


class AutoSchema(SpectacularAutoSchema):
    """Documents the shared error responses on every operation, so clients (and schemathesis)
    know every status code an endpoint can answer with."""

    def _get_response_bodies(self, direction: Literal["request", "response"] = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        errors = {**_ERRORS, **_WRITE_ERRORS} if self.method == "POST" else _ERRORS
        for code, description in errors.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ErrorSerializer, description=description), code
                )
        return responses


def accepted(data: Any, location: str, request: Request) -> Response:
    """202 for work that continues in the background, with where to poll."""
    url = request.build_absolute_uri(location)
    return Response(data, status=202, headers={"Location": url})


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents ``Authorization: Token <key>`` (accounts' hashed API tokens) in the schema."""

    target_class = "accounts.authentication.HashedTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`; create keys on your account page.",
        }


_PK_SENTINEL = 987654321987


def object_url(serializer: serializers.Serializer, name: str, pk: int) -> str:
    """``reverse(name, kwargs={"pk": pk}, request=...)``, reversing each route once per response.

    A 54-image album page needs three URLs per image; resolving the route each time was a
    third of the serializer's time.
    """
    # The context is the dict every serializer of one response shares (DRF types it as a Mapping).
    context = cast(dict[str, Any], serializer.context)
    templates = context.setdefault("_url_templates", {})
    template = templates.get(name)
    if template is None:
        url = reverse(name, kwargs={"pk": _PK_SENTINEL}, request=context.get("request"))
        template = templates[name] = url.replace(str(_PK_SENTINEL), "{pk}")
    return template.format(pk=int(pk))


class JobStateSerializer(serializers.Serializer):
    """The lifecycle fields every background job shows (imagineer.models.Job).

    Mix into a job's ModelSerializer and add ``JOB_STATE_FIELDS`` to its ``Meta.fields``.
    """

    attempts = serializers.IntegerField(read_only=True, help_text="How many times a worker has started it.")
    attempt_limit = serializers.IntegerField(read_only=True, help_text="Starts allowed before it fails.")
    attempt_label = serializers.CharField(read_only=True, help_text='"attempt 2 of 3"; empty before the first start.')
    heartbeat_at = serializers.DateTimeField(read_only=True, allow_null=True)
    progress_done = serializers.IntegerField(read_only=True)
    progress_total = serializers.IntegerField(read_only=True)


JOB_STATE_FIELDS = ["attempts", "attempt_limit", "attempt_label", "heartbeat_at", "progress_done", "progress_total"]
