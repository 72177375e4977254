"""One URL rule for the whole API: no trailing slash; the other form is redirected or refused plainly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import resolve

from accounts.tests.matrix import url_routes
from imagineer.api_fallback import FALLBACK_NAME

pytestmark = pytest.mark.django_db
DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_every_api_route_has_no_trailing_slash():
    routes = [route for route, _callback in url_routes() if route.startswith("api/")]
    assert len(routes) > 30
    assert [route for route in routes if route.endswith("/")] == []


def test_training_and_scrape_paths_answer_without_and_redirect_with_a_slash(api_as):
    client = api_as("creator")
    assert client.get("/api/training/runs").status_code == 200
    # Before: 500 (Django's APPEND_SLASH RuntimeError). Now the view validates the body.
    response = client.post("/api/training/runs", {}, format="json")
    assert response.status_code == 400 and "album" in response.json()["error"]["fields"]
    assert client.get("/api/training/defaults").status_code == 200
    assert client.get("/api/scrape-jobs").status_code == 200

    redirected = client.get("/api/training/runs/?page=2")
    assert redirected.status_code == 301 and redirected["Location"] == "/api/training/runs?page=2"
    assert client.get("/api/scrape-jobs/")["Location"] == "/api/scrape-jobs"
    assert client.head("/api/albums/").status_code == 301

    for method in ("post", "put", "patch", "delete"):
        refused = getattr(client, method)("/api/training/runs/", {}, format="json")
        assert refused.status_code == 404 and refused["Content-Type"] == "application/json"
        error = refused.json()["error"]
        assert error["code"] == "trailing_slash"
        assert f"send {method.upper()} to /api/training/runs, not /api/training/runs/" in error["message"]


@pytest.mark.parametrize("debug", [True, False])
def test_unknown_api_urls_are_json_404_with_debug_on_or_off(api_as, settings, debug):
    settings.DEBUG = debug
    client = api_as("creator")
    for path in ("/api/no-such-endpoint", "/api/albums/999999/nope", "/api/"):
        response = client.get(path)
        assert response.status_code == 404 and response["Content-Type"] == "application/json", path
        assert response.json()["error"]["code"] == "not_found"
    anonymous = api_as(None).post("/api/nothing", {}, format="json")
    assert anonymous.status_code == 404 and "No API endpoint at /api/nothing" in anonymous.json()["error"]["message"]


def test_every_path_in_the_api_docs_is_an_endpoint():
    paths = set(re.findall(r"`(/api/[^`\s]*)`", DOCS.read_text()))
    assert "/api/scrape-jobs" in paths and "/api/training/runs" in paths
    for path in paths:
        concrete = re.sub(r"<[^>]+>", "1", path.split("?")[0].replace("[/<id>]", ""))
        if concrete == "/api/" or "..." in concrete:
            continue  # "everything under /api/", "/api/scrape-jobs/<id>/..."
        assert not concrete.endswith("/"), path
        assert resolve(concrete).url_name != FALLBACK_NAME, path
