"""The pagination of every API list (its own module: DRF imports it while building its views)."""

from __future__ import annotations

from rest_framework import pagination


class Pagination(pagination.PageNumberPagination):
    """``?page=`` and ``?page_size=`` (at most 200) on every list."""

    page_size_query_param = "page_size"
    max_page_size = 200

    @property
    def count(self) -> int:
        """How many items all the pages hold (after ``paginate_queryset``)."""
        assert self.page is not None, "paginate_queryset() first"
        return self.page.paginator.count
