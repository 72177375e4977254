from django.conf import settings
from django.http import HttpRequest

from albums.preferences import nsfw_blur_enabled
from imagineer.permissions import GENERATE, admin_site_has_permission, can_act, public_albums_enabled

# What the label buttons say: the offline labeler is no AI, and should not be called one.
LABELER_BUTTONS = {
    "local": "Label (offline labeler)",
    "claude-docker": "Label with Claude",
    "claude-cli": "Label with Claude",
}


def imagineer(request: HttpRequest) -> dict[str, object]:
    return {
        "uses_noise_model": not settings.IMAGINEER_MODEL,
        "labeler_button": LABELER_BUTTONS.get(settings.IMAGINEER_LABELER, "Label"),
        "nsfw_blur": nsfw_blur_enabled(request),
        # Callables: templates call them only where a button needs them (no permission query otherwise).
        "can_generate": lambda: can_act(request.user, GENERATE),
        # The admin link: curators and superusers only, as the admin site itself checks.
        "can_admin": lambda: admin_site_has_permission(request),
        # Anonymous visitors may browse public albums (the header shows them the Albums link).
        "public_albums": public_albums_enabled(),
    }
