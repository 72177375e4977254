"""What the Content-Security-Policy and Permissions-Policy headers allow (settings build them from this).

Scripts and styles come from this server only: no inline script anywhere (page behaviour is
in ``static/js``), inline ``<style>`` only with the per-response nonce (ReDoc's styled
components ask for it), no third-party host. The one exception is a fixed list of inline
``style`` attribute values in Django REST framework's own browsable-API templates, allowed by
their hashes (``'unsafe-hashes'``) rather than by editing DRF's templates: those strings
are fixed text, so no attacker-supplied style can match them.

Browsers POST violation reports to ``/csp-report`` (``imagineer.views.csp_report``), which
logs them. Imported by the settings: no Django imports here.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.util import find_spec
from pathlib import Path

# Browser features no page here uses: a script injected anyway cannot reach them.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "hid",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
)
_STYLE_ATTRIBUTE = re.compile(r'\bstyle="([^"{}]*)"')


def drf_style_attribute_hashes() -> list[str]:
    """CSP hash sources of every literal ``style="..."`` in DRF's browsable-API templates."""
    spec = find_spec("rest_framework")
    folder = Path(str(spec and spec.origin)).parent / "templates" / "rest_framework"
    values = {value for path in folder.rglob("*.html") for value in _STYLE_ATTRIBUTE.findall(path.read_text())}
    return sorted(f"'sha256-{base64.b64encode(hashlib.sha256(value.encode()).digest()).decode()}'" for value in values)
