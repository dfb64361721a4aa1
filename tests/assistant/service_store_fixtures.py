"""A Store on SQLite, and on PostgreSQL when CHARTDRAFT_TEST_POSTGRES_URL is set (CI sets it)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.store import Store
from assistant.store.schema import metadata

PG_URL = os.environ.get("CHARTDRAFT_TEST_POSTGRES_URL")

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=[
        pytest.mark.postgres,
        pytest.mark.skipif(not PG_URL, reason="CHARTDRAFT_TEST_POSTGRES_URL not set"),
    ]),
]


def open_store(kind: str, tmp_path: Path) -> Iterator[Store]:
    if kind == "sqlite":
        store = Store(f"sqlite:///{tmp_path / 'service.db'}")
    else:
        assert PG_URL
        from sqlalchemy import create_engine

        eng = create_engine(PG_URL)
        metadata.drop_all(eng)  # a clean slate: these tables belong to this test only
        eng.dispose()
        store = Store(PG_URL)
    try:
        yield store
    finally:
        if kind == "postgres":
            metadata.drop_all(store.engine)
        store.close()
