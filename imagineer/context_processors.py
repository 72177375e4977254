from django.conf import settings
from django.http import HttpRequest


def imagineer(request: HttpRequest) -> dict[str, object]:
    return {"uses_noise_model": not settings.IMAGINEER_MODEL}
