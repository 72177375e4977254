#!/usr/bin/env bash
# Make sure Debian's Chromium is at /usr/bin/chromium for the browser tests (Playwright drives
# it through executablePath; we never run `playwright install`, which downloads from a CDN).
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo present)"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "Need root to install chromium (apt-get install chromium); install it and run again." >&2
  exit 1
fi
if [ ! -f /var/lib/apt/periodic/imagineer-updated ]; then
  apt-get update -qq && mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/imagineer-updated
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-dejavu-core >/dev/null
test -x /usr/bin/chromium || { echo "chromium did not install at /usr/bin/chromium" >&2; exit 1; }
echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo installed)"
