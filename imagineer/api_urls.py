"""Every /api/ endpoint except the ones other apps mount themselves (scrape jobs, training).

Names are in the ``api`` namespace: ``reverse("api:album-detail", kwargs={"pk": 1})``.
"""

from csp.decorators import csp_update
from django.urls import path
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from albums.api.album_views import (
    AlbumViewSet,
    ImageFileView,
    ImageThumbnailView,
    ImageViewSet,
    LegacyBatchDetailView,
    LegacyBatchListView,
)
from generation.api.deck_views import (
    ComparisonDetailView,
    ComparisonStartView,
    DeckSlotsView,
    DeckSlotView,
    DeckTakesView,
    SlotPickView,
    SlotTakesView,
    SlotVaryView,
)
from generation.api.import_views import RecipeImportView
from generation.api.views import (
    BatchTemplateViewSet,
    GenerateView,
    JobViewSet,
    LoraViewSet,
    RandomThemeView,
    TemplateRunViewSet,
)
from imagineer.api_views import ConfigView, HealthView, SchemaView
from labeling.api.views import AlbumLabelView, ImageLabelView, LabelingJobViewSet, TaskStatusView

app_name = "api"


class Router(SimpleRouter):
    """The original's paths have no trailing slash (``/api/albums/3``)."""

    def __init__(self) -> None:
        super().__init__(trailing_slash=False)


router = Router()
router.register("jobs", JobViewSet, basename="job")
router.register("batch-templates", BatchTemplateViewSet, basename="batch-template")
router.register(r"batch-templates/(?P<template_pk>\d+)/runs", TemplateRunViewSet, basename="batch-template-run")
router.register("loras", LoraViewSet, basename="lora")
router.register("albums", AlbumViewSet, basename="album")
router.register("images", ImageViewSet, basename="image")
router.register("labeling/jobs", LabelingJobViewSet, basename="labeling-job")

urlpatterns = [
    path("health", HealthView.as_view(), name="health"),
    path("config", ConfigView.as_view(), name="config"),
    path("generate", GenerateView.as_view(), name="generate"),
    path("generate/import", RecipeImportView.as_view(), name="generate-import"),
    path("themes/random", RandomThemeView.as_view(), name="theme-random"),
    path("images/<int:pk>/file", ImageFileView.as_view(), name="image-file"),
    path("images/<int:pk>/thumbnail", ImageThumbnailView.as_view(), name="image-thumbnail"),
    path("batches", LegacyBatchListView.as_view(), name="batch-list"),
    path("batches/<str:batch_id>", LegacyBatchDetailView.as_view(), name="batch-detail"),
    path("labeling/image/<int:pk>", ImageLabelView.as_view(), name="labeling-image"),
    path("labeling/album/<int:pk>", AlbumLabelView.as_view(), name="labeling-album"),
    path("labeling/tasks/<str:task_id>", TaskStatusView.as_view(), name="labeling-task"),
    path("albums/<int:album_pk>/slots", DeckSlotsView.as_view(), name="deck-slots"),
    path("albums/<int:album_pk>/slots/<int:index>", DeckSlotView.as_view(), name="deck-slot"),
    path("albums/<int:album_pk>/takes", DeckTakesView.as_view(), name="deck-takes"),
    path("albums/<int:album_pk>/slots/<int:index>/takes", SlotTakesView.as_view(), name="deck-slot-takes"),
    path("albums/<int:album_pk>/slots/<int:index>/vary", SlotVaryView.as_view(), name="deck-slot-vary"),
    path("albums/<int:album_pk>/slots/<int:index>/pick", SlotPickView.as_view(), name="deck-slot-pick"),
    path("comparisons", ComparisonStartView.as_view(), name="comparison-list"),
    path("comparisons/<int:pk>", ComparisonDetailView.as_view(), name="comparison-detail"),
    path("schema", SchemaView.as_view(), name="schema"),
    # The split view serves its start-up script as a separate file: no inline script (CSP).
    path("schema/swagger-ui", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="swagger-ui"),
    # ReDoc builds its search index in a worker made from a blob: URL.
    path(
        "schema/redoc",
        csp_update({"worker-src": ["blob:"]})(SpectacularRedocView.as_view(url_name="api:schema")),
        name="redoc",
    ),
    *router.urls,
]
