"""Scrape-job endpoints, mounted under ``api/`` by imagineer/urls.py; paths without a trailing
slash, like the rest of the API (``/api/scrape-jobs/3/cancel``)."""

from django.urls import path

from albums.api.scrape_views import ScrapeJobViewSet

app_name = "scrape-api"

urlpatterns = [
    path("scrape-jobs", ScrapeJobViewSet.as_view({"get": "list", "post": "create"}), name="scrape-job-list"),
    path("scrape-jobs/<int:pk>", ScrapeJobViewSet.as_view({"get": "retrieve"}), name="scrape-job-detail"),
    path("scrape-jobs/<int:pk>/cancel", ScrapeJobViewSet.as_view({"post": "cancel"}), name="scrape-job-cancel"),
]
