"""The browser files the pages load, all served by the server itself (nothing from a CDN).

htmx is vendored: its version is pinned here and its checksum is tested, so that an
upgrade is a deliberate change. It stays on 2.x: 4.x no longer inherits `hx-headers`
from `<body>`, which is how every htmx request carries the CSRF token."""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
TEMPLATES_DIR = Path(__file__).parent / "templates"

#: The htmx release in `static/htmx.min.js` (its `dist/htmx.min.js` from npm).
HTMX_VERSION = "2.0.11"
#: SHA-256 of that file.
HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"
#: Where the pages load it from; the version in the query string makes an upgrade reach
#: browsers that cached the old file.
HTMX_URL = f"/static/htmx.min.js?v={HTMX_VERSION}"
