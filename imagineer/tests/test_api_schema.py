"""The OpenAPI schema, its vendored viewers, and a schemathesis run over the live app."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from accounts.services import token_create
from imagineer.tests.factories import (
    AlbumImageFactory,
    BatchTemplateFactory,
    BatchTemplateLoraFactory,
    LabelFactory,
    UserFactory,
)

# The operations of one of the two schemathesis processes (the other takes the rest).
SCHEMATHESIS_HALF = r"^/api/(albums|images|batches|labeling|loras|themes|health|config)"
OUR_PATHS = (
    "/api/health",
    "/api/config",
    "/api/generate",
    "/api/jobs",
    "/api/jobs/{id}",
    "/api/batch-templates",
    "/api/batch-templates/{id}",
    "/api/batch-templates/{id}/generate",
    "/api/batch-templates/{template_pk}/runs",
    "/api/batch-templates/{template_pk}/runs/{id}",
    "/api/batch-templates/{template_pk}/runs/{id}/retry",
    "/api/albums",
    "/api/albums/{id}",
    "/api/images",
    "/api/images/{id}",
    "/api/images/{id}/file",
    "/api/images/{id}/thumbnail",
    "/api/themes/random",
    "/api/loras",
    "/api/loras/{id}",
    "/api/labeling/image/{id}",
    "/api/labeling/album/{id}",
    "/api/labeling/tasks/{task_id}",
    "/api/labeling/jobs",
    "/api/labeling/jobs/{id}",
    "/api/batches",
    "/api/batches/{batch_id}",
)


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def test_schema_is_valid_openapi_and_documents_every_endpoint(schema):
    validate_schema(schema)
    for path in OUR_PATHS:
        assert path in schema["paths"], path
        for method, operation in schema["paths"][path].items():
            if method == "parameters":
                continue
            responses = operation["responses"]
            success = [code for code in responses if code.startswith("2")]
            assert success, (path, method)
            assert all(code in responses for code in ("400", "401", "403", "404")), (path, method)
            assert responses["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
            if method in {"post", "put", "patch"} and not path.endswith("/retry"):
                assert "requestBody" in operation, (path, method)
            if method != "delete":
                assert any(responses[code].get("content") for code in success), (path, method)


def test_async_writes_are_documented_as_202_and_uploads_as_201(schema):
    paths = schema["paths"]
    assert "202" in paths["/api/generate"]["post"]["responses"]
    assert "202" in paths["/api/batch-templates/{id}/generate"]["post"]["responses"]
    assert "202" in paths["/api/labeling/album/{id}"]["post"]["responses"]
    assert "202" in paths["/api/jobs/{id}"]["delete"]["responses"]
    assert "201" in paths["/api/loras"]["post"]["responses"]
    assert "multipart/form-data" in paths["/api/loras"]["post"]["requestBody"]["content"]


@pytest.mark.django_db
def test_swagger_ui_and_redoc_use_vendored_assets(api_as):
    client = api_as("viewer")
    for url in ("/api/schema/swagger-ui", "/api/schema/redoc"):
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert "drf_spectacular_sidecar" in html
        assert not re.search(r"https?://(cdn|unpkg|fastly)", html), url
        asset = re.search(r'src="(/static/drf_spectacular_sidecar/[^"]+\.js)"', html).group(1)
        assert client.get(asset).status_code == 200, asset
    assert client.get("/api/schema").status_code == 200


SCHEMA_RACE = """
import threading
import django
django.setup()
from django.contrib.auth import get_user_model
from django.urls import resolve
from rest_framework.test import APIRequestFactory, force_authenticate
view = resolve("/api/schema").func
admin = get_user_model()(username="racer", is_superuser=True, is_active=True, is_staff=True)
results, barrier = [], threading.Barrier(8)
def call():
    request = APIRequestFactory().get("/api/schema")
    force_authenticate(request, user=admin)
    barrier.wait()
    try:
        results.append(view(request).status_code)
    except Exception as error:
        results.append(type(error).__name__)
threads = [threading.Thread(target=call) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(sorted(map(str, results)))
"""


def test_first_schema_requests_at_once_all_succeed():
    """In a fresh process (drf-spectacular loads its extension classes on first use), eight
    requests for the schema at the same moment: each used to race that loading and answer 500."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "imagineer.settings", "PYTHONPATH": str(root)}
    result = subprocess.run(
        [sys.executable, "-c", SCHEMA_RACE], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip().splitlines()[-1] == str(["200"] * 8), result.stdout + result.stderr[-3000:]


def test_unknown_api_urls_answer_with_the_json_error_body(client, db):
    response = client.get("/api/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_schemathesis_finds_no_server_error_and_no_schema_violation(live_server, tmp_path):
    """Fuzz the operations of the live app under /api/ (ours and scrape jobs) as an administrator:
    every phase schemathesis has (examples, coverage, fuzzing, stateful), its status, content-type,
    header and schema checks, and ours that every error answer is the one JSON error body
    (imagineer/tests/schemathesis_hooks.py)."""
    admin = UserFactory(username="fuzzer", role="curator", is_superuser=True, is_staff=True)
    _, key = token_create(user=admin, name="schemathesis")
    # Some rows for the fuzzer to find at small ids.
    membership = AlbumImageFactory()
    LabelFactory(image=membership.image)
    BatchTemplateLoraFactory(template=BatchTemplateFactory())
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{live_server.url}/api/schema",
        "--header",
        f"Authorization: Token {key}",
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
        "response_headers_conformance,error_body_shape",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        "8",
        "--seed",
        "20261124",
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--no-shrink",
    ]
    env = {
        **os.environ,
        "NO_COLOR": "1",
        "SCHEMATHESIS_HOOKS": "imagineer.tests.schemathesis_hooks",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    # Two processes, each on its half of the API (each half holds the operations that feed each
    # other, for the stateful phase): schemathesis's own worker threads trip a CPython 3.11
    # thread-safety bug in ast.parse ("AST constructor recursion depth mismatch").
    halves = [["--include-path-regex", SCHEMATHESIS_HALF], ["--exclude-path-regex", SCHEMATHESIS_HALF]]
    runs = [
        subprocess.Popen(
            [*command, *half], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for half in halves
    ]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output[-12000:]
        assert "passed" in output and "Runtime Error" not in output


@pytest.mark.django_db
def test_the_browsable_api_renders_every_kind_of_endpoint(api_as):
    membership = AlbumImageFactory()
    template = BatchTemplateFactory()
    client = api_as("creator")
    for url in (
        "/api/albums",
        f"/api/albums/{membership.album_id}",
        "/api/images",
        f"/api/images/{membership.image_id}?include=labels",
        "/api/batch-templates",
        f"/api/batch-templates/{template.pk}",
        f"/api/batch-templates/{template.pk}/runs",
        "/api/jobs",
        "/api/loras",
        "/api/generate",
        "/api/config",
        "/api/health",
        "/api/batches",
        "/api/labeling/jobs",
    ):
        response = client.get(url, HTTP_ACCEPT="text/html")
        assert response.status_code in {200, 405}, url
        assert response["Content-Type"].startswith("text/html"), url
        assert b"Imagineer" in response.content or b"Django REST framework" in response.content, url


def test_schema_generates_without_warnings(tmp_path):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    assert "/api/training/runs" in (tmp_path / "schema.yml").read_text()
