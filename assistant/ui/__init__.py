"""The clinician web UI at ``/ui``: one server-rendered shell, plain JavaScript, the /v1 API.

Why plain JS and no htmx: the draft stream needs ``Authorization`` on an SSE request, which
``EventSource`` (and htmx's SSE extension) cannot send; ``fetch`` with a stream reader can. The
browser holds the user's bearer token (session storage) and calls the same /v1 endpoints as any
client, so the UI gets exactly the roles and patient scopes the API enforces. Nothing is fetched
from a CDN and nothing is built: the files under ``static/`` are served as they are.
"""

from __future__ import annotations

from assistant.ui.routes import mount

__all__ = ["mount"]
