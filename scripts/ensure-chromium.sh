#!/usr/bin/env bash
# Find or install a Chromium for Playwright and record its path in .venv/chromium-path, and NSS's
# certutil for trusting a private CA.
# Order: $PORTAL_AUDIT_CHROMIUM, the path recorded by an earlier run, a system Chromium,
# Debian/Ubuntu's package (when root), then Playwright's own download.
set -euo pipefail
cd "$(dirname "$0")/.."
record=.venv/chromium-path

usable() { [ -n "${1:-}" ] && [ -x "$1" ]; }

# NSS's certutil builds the browser's trust store for a portal's private CA (portal/browser.py).
if ! command -v certutil >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "portal-audit: installing NSS tools (certutil) from the distribution's packages" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libnss3-tools >&2 || true
fi

if usable "${PORTAL_AUDIT_CHROMIUM:-}"; then
  echo "$PORTAL_AUDIT_CHROMIUM" > "$record"; exit 0
fi
if [ -f "$record" ]; then
  recorded=$(cat "$record")
  if usable "$recorded" || [ "$recorded" = playwright ]; then exit 0; fi
fi
for candidate in /usr/lib/chromium/chromium /usr/lib/chromium-browser/chromium-browser \
                 /usr/bin/chromium /usr/bin/chromium-browser /usr/bin/google-chrome; do
  if usable "$candidate"; then echo "$candidate" > "$record"; exit 0; fi
done
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "portal-audit: installing Chromium from the distribution's packages" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2 \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium-browser >&2 || true
  for candidate in /usr/lib/chromium/chromium /usr/bin/chromium /usr/bin/chromium-browser; do
    if usable "$candidate"; then echo "$candidate" > "$record"; exit 0; fi
  done
fi
echo "portal-audit: no system Chromium; trying Playwright's own download" >&2
if .venv/bin/python -m playwright install chromium >&2; then
  echo playwright > "$record"; exit 0
fi
echo "portal-audit: no Chromium found or installable. Install one (e.g. apt-get install chromium)" \
     "or set PORTAL_AUDIT_CHROMIUM=/path/to/chrome" >&2
exit 1
