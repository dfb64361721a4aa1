"""The one settings object: env prefix, TOML file, and all local state under the data dir."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from assistant.settings import Settings, get_settings


def test_env_prefix_and_derived_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHARTDRAFT_DATA_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("CHARTDRAFT_BACKEND", "extractive")
    s = Settings()
    assert s.backend == "extractive"
    # Every piece of local state derives from data_dir.
    for path in (s.qdrant_path, s.cache_dir):
        assert path.is_relative_to(tmp_path / "a")
    assert str(tmp_path / "a") in s.sql_url and str(tmp_path / "a") in s.chart_db_url


def test_two_data_dirs_share_nothing(tmp_path: Path) -> None:
    a, b = Settings(data_dir=tmp_path / "a"), Settings(data_dir=tmp_path / "b")
    paths_a = {str(a.qdrant_path), a.sql_url, a.chart_db_url, str(a.cache_dir)}
    paths_b = {str(b.qdrant_path), b.sql_url, b.chart_db_url, str(b.cache_dir)}
    assert not paths_a & paths_b


def test_toml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "chartdraft.toml"
    cfg.write_text('backend = "openai"\nopenai_base_urls = ["http://a/v1", "http://b/v1"]\n')
    monkeypatch.setenv("CHARTDRAFT_CONFIG", str(cfg))
    s = Settings()
    assert s.backend == "openai" and s.openai_base_urls == ["http://a/v1", "http://b/v1"]
    assert s.mode == "free"  # capable servers write the whole document by default


def test_env_beats_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('backend = "openai"\n')
    monkeypatch.setenv("CHARTDRAFT_CONFIG", str(cfg))
    monkeypatch.setenv("CHARTDRAFT_BACKEND", "extractive")
    assert Settings().backend == "extractive"


def test_bad_value_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHARTDRAFT_BACKEND", "gpt-everything")
    with pytest.raises(ValidationError) as info:
        Settings()
    assert "backend" in str(info.value)


def test_embedded_defaults_to_constrained_mode() -> None:
    assert Settings(backend="embedded").mode == "constrained"
    assert Settings(backend="embedded", drafting_mode="free").mode == "free"


def test_get_settings_is_cached_and_resettable(monkeypatch: pytest.MonkeyPatch) -> None:
    get_settings.cache_clear()
    monkeypatch.setenv("CHARTDRAFT_PORT", "8123")
    assert get_settings() is get_settings()
    assert get_settings().port == 8123
    get_settings.cache_clear()
