"""Fixtures for the end-to-end API tests; the service itself is set up in api_service.py."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from api_service import service  # noqa: E402,F401  (the session fixture)
