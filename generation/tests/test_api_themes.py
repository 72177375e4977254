"""/api/themes/random."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_random_theme(api_as, django_assert_num_queries):
    client = api_as("viewer")
    with django_assert_num_queries(2):  # session, user
        response = client.get("/api/themes/random")
    assert response.status_code == 200
    assert len(response.json()["theme"].split()) >= 3


def test_random_theme_needs_sign_in(api_as):
    assert api_as(None).get("/api/themes/random").status_code == 401
