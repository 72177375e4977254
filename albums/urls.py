from django.urls import path

from albums import views, views_scrape

app_name = "albums"

urlpatterns = [
    path("albums/", views.album_list_page, name="album-list"),
    path("albums/new", views.album_new, name="album-new"),
    path("albums/<int:pk>/", views.album_detail, name="album-detail"),
    path("albums/<int:pk>/upload", views.album_upload, name="album-upload"),
    path("albums/<int:pk>/images", views.album_images_action, name="album-images"),
    path("albums/<int:pk>/move", views.album_image_move, name="album-move"),
    path("albums/<int:pk>/download.zip", views.album_download, name="album-download"),
    path("albums/<int:pk>/label", views.album_label, name="album-label"),
    path("albums/<int:pk>/labeling", views.album_labeling_partial, name="album-labeling"),
    path("albums/<int:album_pk>/images/<int:pk>/", views.album_image_detail, name="album-image"),
    path("images/<int:pk>/", views.image_detail, name="image-detail"),
    path("images/<int:pk>/file", views.image_file, name="image-file"),
    path("images/<int:pk>/thumbnail", views.image_thumbnail, name="image-thumbnail"),
    path("images/<int:pk>/label", views.image_label, name="image-label"),
    path("images/<int:pk>/labels", views.image_labels, name="image-labels"),
    path("search/", views.search, name="search"),
    path("preferences/nsfw-blur", views.nsfw_blur_toggle, name="nsfw-blur"),
    path("scrape/", views_scrape.scrape_list, name="scrape-list"),
    path("scrape/new", views_scrape.scrape_new, name="scrape-new"),
    path("scrape/<int:pk>/", views_scrape.scrape_detail, name="scrape-detail"),
    path("scrape/<int:pk>/progress", views_scrape.scrape_progress, name="scrape-progress"),
    path("scrape/<int:pk>/cancel", views_scrape.scrape_cancel, name="scrape-cancel"),
]
