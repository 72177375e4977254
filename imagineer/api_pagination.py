"""The pagination of every API list (its own module: DRF imports it while building its views)."""

from __future__ import annotations

from rest_framework import pagination


class Pagination(pagination.PageNumberPagination):
    """``?page=`` and ``?page_size=`` (at most 200) on every list."""

    page_size_query_param = "page_size"
    max_page_size = 200
