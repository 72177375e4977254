"""What every browser test watches: Content-Security-Policy violations and requests off the server.

``watched = watch(page)`` before the first navigation; ``watched.problems()`` is empty when no
document broke the policy (its ``securitypolicyviolation`` event, or Chromium's console
message for it) and nothing was asked of any host but the live server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# Runs in every document before its own scripts; the binding is Playwright's, outside the page's policy.
_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCspViolation(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}`
    + ` in ${event.sourceFile || event.documentURI}:${event.lineNumber}`
    + (event.sample ? ` (${event.sample})` : ""));
});
"""
_LOCAL = re.compile(r"^(https?://(127\.0\.0\.1|localhost)[:/]|data:|blob:|about:)")


@dataclass
class BrowserWatch:
    outside: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return [
            *(f"CSP violation: {item}" for item in self.violations),
            *(f"console: {item}" for item in self.console),
            *(f"request off the server: {url}" for url in self.outside),
        ]


def watch(page: Any) -> BrowserWatch:
    watched = BrowserWatch()
    page.expose_function("reportCspViolation", lambda text: watched.violations.append(f"{page.url}: {text}"))
    page.add_init_script(_LISTENER)
    page.on("request", lambda request: None if _LOCAL.match(request.url) else watched.outside.append(request.url))
    page.on(
        "console",
        lambda message: (
            watched.console.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text or "Permissions-Policy" in message.text
            else None
        ),
    )
    return watched
