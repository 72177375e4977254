from django.conf import settings
from django.http import HttpRequest

from albums.preferences import nsfw_blur_enabled
from imagineer.permissions import GENERATE, can_act


def imagineer(request: HttpRequest) -> dict[str, object]:
    return {
        "uses_noise_model": not settings.IMAGINEER_MODEL,
        "nsfw_blur": nsfw_blur_enabled(request),
        # Callables: templates call them only where a button needs them (no permission query otherwise).
        "can_generate": lambda: can_act(request.user, GENERATE),
    }
