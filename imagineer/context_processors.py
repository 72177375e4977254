from django.conf import settings
from django.http import HttpRequest

from albums.preferences import nsfw_blur_enabled
from imagineer.permissions import GENERATE, admin_site_has_permission, can_act, public_albums_enabled


def imagineer(request: HttpRequest) -> dict[str, object]:
    return {
        "uses_noise_model": not settings.IMAGINEER_MODEL,
        "nsfw_blur": nsfw_blur_enabled(request),
        # Callables: templates call them only where a button needs them (no permission query otherwise).
        "can_generate": lambda: can_act(request.user, GENERATE),
        # The admin link: curators and superusers only, as the admin site itself checks.
        "can_admin": lambda: admin_site_has_permission(request),
        # Anonymous visitors may browse public albums (the header shows them the Albums link).
        "public_albums": public_albums_enabled(),
    }
