"""/api/health, /api/config, /api/schema, and the JSON 404/500 answers for unknown /api/ URLs."""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.views import defaults
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from drf_spectacular.views import SpectacularAPIView
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from imagineer import permissions as perms
from imagineer.api import error_body
from imagineer.config import BATCH_SIZE_MAX, config_get, config_update
from imagineer.health import health_report
from imagineer.models import Config
from imagineer.permissions import ConfigurePermission, RolePermission


class _PartSerializer(serializers.Serializer):
    ok = serializers.BooleanField(allow_null=True)
    error = serializers.CharField(required=False)


class _QueueSerializer(serializers.Serializer):
    ok = serializers.BooleanField(allow_null=True, help_text="null: this broker cannot be asked (embedded mode).")
    workers = serializers.ListField(child=serializers.CharField())


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "degraded", "down"])
    down = serializers.ListField(
        child=serializers.ChoiceField(choices=["database", "cache", "broker"]), help_text="The parts that are down."
    )
    database = _PartSerializer()
    cache = _PartSerializer()
    broker = _PartSerializer()
    workers = serializers.DictField(child=_QueueSerializer(), help_text="By queue: gpu, labeling, default.")
    model = inline_serializer(
        "HealthModel",
        {
            "model_id": serializers.CharField(allow_blank=True),
            "is_noise_model": serializers.BooleanField(),
            "loaded": serializers.BooleanField(help_text="A live gpu worker has the pipeline loaded."),
            "device": serializers.CharField(allow_blank=True),
            "last_seen": serializers.DateTimeField(allow_null=True),
            "configured_model_error": serializers.CharField(allow_blank=True),
        },
        required=False,
    )
    device = serializers.CharField(allow_null=True, help_text="The gpu worker's device (cuda, mps, cpu).")


class HealthView(APIView):
    """Anyone may ask; nothing secret is reported."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Health of the database, broker, workers and model",
        responses={
            200: HealthSerializer,
            503: OpenApiResponse(
                HealthSerializer, description="The database, the cache or the broker is down (named in `down`)."
            ),
        },
    )
    def get(self, request: Request) -> Response:
        report = health_report()
        return Response(report, status=503 if report["status"] == "down" else 200)


class GenerationConfigSerializer(serializers.Serializer):
    width = serializers.IntegerField(min_value=64, max_value=2048, help_text="Multiple of 8.")
    height = serializers.IntegerField(min_value=64, max_value=2048, help_text="Multiple of 8.")
    steps = serializers.IntegerField(min_value=1, max_value=150)
    guidance_scale = serializers.FloatField(min_value=0, max_value=30)
    negative_prompt = serializers.CharField(allow_blank=True, max_length=settings.IMAGINEER_MAX_PROMPT_CHARS)
    batch_size = serializers.IntegerField(min_value=0, max_value=BATCH_SIZE_MAX, help_text="0 = automatic.")


class HardwareConfigSerializer(serializers.Serializer):
    device = serializers.ChoiceField(choices=Config.Device.choices)
    mixed_precision = serializers.BooleanField()
    enable_attention_slicing = serializers.BooleanField()
    enable_vae_slicing = serializers.BooleanField()
    enable_xformers = serializers.BooleanField()


class ConfigSerializer(serializers.Serializer):
    generation = GenerationConfigSerializer()
    hardware = HardwareConfigSerializer()
    model = inline_serializer(
        "ConfigModel",
        {
            "name": serializers.CharField(),
            "is_noise_model": serializers.BooleanField(),
        },
        read_only=True,
        help_text="Set by IMAGINEER_MODEL in the environment; not writable here.",
    )


class ConfigPartialSerializer(serializers.Serializer):
    generation = GenerationConfigSerializer(partial=True, required=False)
    hardware = HardwareConfigSerializer(partial=True, required=False)


def _model() -> dict[str, Any]:
    return {"name": settings.IMAGINEER_MODEL or "built-in tiny model", "is_noise_model": not settings.IMAGINEER_MODEL}


def _with_model(values: dict[str, Any]) -> dict[str, Any]:
    return {**values, "model": _model()}


def _changes(data: Any) -> Any:
    """The request body, less an unchanged read-only ``model`` echoed back from a GET."""
    if isinstance(data, dict) and data.get("model") == _model():
        return {key: value for key, value in data.items() if key != "model"}
    return data


class ConfigView(APIView):
    """Generation defaults and hardware options. Paths, secrets and the model are not here."""

    permission_classes = [RolePermission, ConfigurePermission]

    @extend_schema(summary="The configuration", responses={200: ConfigSerializer})
    def get(self, request: Request) -> Response:
        return Response(_with_model(config_get()))

    @extend_schema(
        summary="Replace the configuration (every key; superusers only)",
        request=ConfigSerializer,
        responses={200: ConfigSerializer},
    )
    def put(self, request: Request) -> Response:
        return Response(
            _with_model(
                config_update(changes=_changes(request.data), user=perms.acting_user(request.user), partial=False)
            )
        )

    @extend_schema(
        summary="Change some configuration keys (superusers only)",
        request=ConfigPartialSerializer,
        responses={200: ConfigSerializer},
    )
    def patch(self, request: Request) -> Response:
        return Response(
            _with_model(
                config_update(changes=_changes(request.data), user=perms.acting_user(request.user), partial=True)
            )
        )


class SchemaView(SpectacularAPIView):
    """drf-spectacular's schema, generated one request at a time: the first generation in a
    process loads extension classes lazily without a lock, and two first requests at once
    answered 500 (AttributeError in drf_spectacular.plumbing._load_class)."""

    _generating = threading.Lock()

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        with self._generating:
            return super().get(request, *args, **kwargs)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _error_page(request: HttpRequest, template: str, status: int, context: dict[str, Any]) -> HttpResponse:
    """The site's own error page, with the menu. Rendered here rather than by Django's default
    views: those are ``requires_csrf_token`` and set a CSRF cookie on their own, also on a
    token request to a download URL (accounts.middleware.TokenScopeMiddleware keeps a token
    request from ever getting one, and can only do so when the cookie is left to the middleware)."""
    return HttpResponse(loader.render_to_string(template, context, request), status=status)


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    """No URL matched: the API's JSON error body under /api/, the site's page elsewhere."""
    if _is_api(request):
        return JsonResponse(error_body("not_found", "No such endpoint or object."), status=404)
    return _error_page(request, "404.html", 404, {"request_path": request.path})


def handler403(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A refusal: the site's page saying why (the PermissionDenied message) and what to do."""
    message = str(exception) if exception and str(exception) else ""
    return _error_page(request, "403.html", 403, {"exception": message})


def handler500(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(
            error_body("server_error", "Something went wrong on our side; it has been logged."), status=500
        )
    return defaults.server_error(request)
