from __future__ import annotations

from django import template
from django.conf import settings

register = template.Library()


@register.simple_tag
def local_signup_open() -> bool:
    return bool(settings.IMAGINEER_LOCAL_SIGNUP)
