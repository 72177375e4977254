"""NUL characters (``\\x00``) anywhere in a request: a 400 that says where, never a 500.

PostgreSQL refuses NUL in text and JSON; before the middleware, ``/api/batches/1%00`` or
``/albums/1/?label=%00`` reached a query and answered 500.
"""

from __future__ import annotations

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from accounts.services import token_create
from accounts.tests.matrix import url_routes
from generation.models import BatchTemplate, GenerationJob
from generation.tests.test_admin import form_data
from imagineer.tests.factories import AlbumImageFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(api_as):
    return api_as("superuser")


@pytest.mark.parametrize(
    ("path", "where"),
    [
        ("/api/batches/1%00", "the URL path"),
        ("/api/labeling/tasks/1%00", "the URL path"),
        ("/api/albums?search=%00", "the query parameter 'search'"),
        ("/api/images?tag=a%00b", "the query parameter 'tag'"),
        ("/api/albums?x%00y=1", "the query parameter 'x\\x00y'"),
    ],
)
def test_nul_in_an_api_path_or_query_is_a_400_saying_where(api, path, where):
    response = api.get(path)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "nul_character"
    assert f"NUL character (\\x00, sent as %00 or \\u0000) in {where}" in error["message"]


def test_nul_in_a_page_query_is_a_400_page_saying_where(client):
    membership = AlbumImageFactory()
    client.force_login(UserFactory())
    response = client.get(f"/albums/{membership.album_id}/?label=%00")
    assert response.status_code == 400
    assert "NUL character" in response.content.decode() and "the query parameter &#x27;label&#x27;" in (
        response.content.decode()
    )


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ('{"prompt": "an owl\\u0000"}', "the JSON value prompt"),
        ('{"prompt": "owl", "loras": [{"name": "x\\u0000"}]}', "the JSON value loras[0].name"),
        ('{"prompt": "owl", "a\\u0000": 1}', "the JSON value 'a\\x00'"),
    ],
)
def test_nul_in_a_json_value_is_a_400_naming_the_field(api, body, where):
    response = api.post("/api/generate", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert where in response.json()["error"]["message"]
    assert not GenerationJob.objects.exists()


def test_an_escaped_backslash_before_u0000_is_text_not_a_nul(api):
    response = api.post("/api/generate", json.dumps({"prompt": "owl \\u0000"}), content_type="application/json")
    assert response.status_code == 202, response.content
    assert GenerationJob.objects.get().prompt == "owl \\u0000"


def test_nul_in_the_nested_config_is_refused(api):
    response = api.patch(
        "/api/config", '{"generation": {"negative_prompt": "x\\u0000"}}', content_type="application/json"
    )
    assert response.status_code == 400
    assert "generation.negative_prompt" in response.json()["error"]["message"]


def test_nul_in_a_multipart_form_field(api):
    refused = api.post("/api/loras", {"file": SimpleUploadedFile("a.safetensors", b"x"), "name": "a\x00b"})
    assert refused.status_code == 400 and "the form field 'name'" in refused.json()["error"]["message"]


def test_nul_in_a_page_form_is_a_400(client):
    client.force_login(UserFactory(role="creator"))
    response = client.post("/generate/", {"prompt": "owl\x00", "width": 64, "height": 64})
    assert response.status_code == 400 and "the form field &#x27;prompt&#x27;" in response.content.decode()
    assert not GenerationJob.objects.exists()


def test_a_csv_with_a_nul_is_a_form_error_in_the_admin(staff_client):
    csv = b"value,suit,visual_layout\nAce,Spa\x00des,one\n"
    data = form_data(csv_file=SimpleUploadedFile("deck.csv", csv, content_type="text/csv"))
    response = staff_client.post(reverse("admin:generation_batchtemplate_add"), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "NUL character (\\x00) on line 2" in errors["csv_file"][0]
    assert not BatchTemplate.objects.exists()


def test_no_route_answers_500_to_a_nul_in_its_path_or_query():
    """Every route of the urlconf, with a NUL in a path segment and in a query parameter."""
    curator = UserFactory(role="curator", is_staff=True, is_superuser=True)
    _, key = token_create(user=curator, name="nul")
    pages = Client(raise_request_exception=False)
    pages.force_login(curator)
    api = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Token {key}")
    failures = []
    tried = 0
    for route, _callback in url_routes():
        if "(?P" in route or "^" in route:
            route = re.sub(r"\^|\$|\\", "", re.sub(r"\(\?P<\w+>[^)]*\)", "1", route))
        path = "/" + re.sub(
            r"<(?:(\w+):)?(\w+)>", lambda m: "1%00" if m.group(1) in {"str", "slug", None} else "1", route
        )
        client = api if path.startswith("/api/") else pages
        for url in (path, path.split("?")[0] + "?q=%00&page=1%00"):
            tried += 1
            response = client.get(url)
            if response.status_code >= 500:
                failures.append((url, response.status_code))
    assert tried > 150
    assert failures == []
