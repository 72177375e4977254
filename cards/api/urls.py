from django.urls import path

from cards.api import views

app_name = "cards-api"

urlpatterns = [
    path("designs", views.DesignListView.as_view(), name="design-list"),
    path("designs/<int:pk>", views.DesignDetailView.as_view(), name="design-detail"),
    path("designs/<int:pk>/copy", views.DesignCopyView.as_view(), name="design-copy"),
    path("designs/<int:pk>/preview.png", views.DesignPreviewView.as_view(), name="design-preview"),
    path("guides/<int:template_pk>", views.GuideDetailView.as_view(), name="guide-detail"),
    path("guides/<int:template_pk>/images", views.GuideImageUploadView.as_view(), name="guide-images"),
    path("guides/<int:template_pk>/preview.png", views.GuidePreviewView.as_view(), name="guide-preview"),
    path("finishing", views.FinishingListView.as_view(), name="finishing-list"),
    path("finishing/<int:pk>", views.FinishingDetailView.as_view(), name="finishing-detail"),
    path("finishing/<int:pk>/cancel", views.FinishingCancelView.as_view(), name="finishing-cancel"),
    path("finishing/<int:pk>/files/<str:name>", views.FinishingFileView.as_view(), name="finishing-file"),
]
