"""deploy/vllm: the recommended settings file loads, and agrees with the serve command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from assistant.llm.openai_compat import OpenAICompatBackend
from assistant.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "vllm"


def _default(script: str, var: str) -> str:
    m = re.search(rf'^{var}="\$\{{{var}:-([^}}]+)\}}"', script, re.M)
    assert m, f"serve.sh has no default for {var}"
    return m.group(1)


@pytest.fixture
def deploy_settings(monkeypatch) -> Settings:
    for key in ("CHARTDRAFT_BACKEND", "CHARTDRAFT_OPENAI_MODEL", "CHARTDRAFT_CONTEXT_TOKENS",
                "CHARTDRAFT_OPENAI_BASE_URLS", "CHARTDRAFT_DRAFTING_MODE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CHARTDRAFT_CONFIG", str(DEPLOY / "chartdraft.toml"))
    return Settings()


def test_settings_file_matches_the_serve_command(deploy_settings: Settings):
    script = (DEPLOY / "serve.sh").read_text()
    s = deploy_settings
    assert s.backend == "openai" and s.mode == "free"
    assert s.openai_model == _default(script, "SERVED_NAME")
    assert s.context_tokens == int(_default(script, "MAX_MODEL_LEN"))
    port = _default(script, "PORT")
    assert s.openai_base_urls[0].endswith(f":{port}/v1")
    for flag in ("--enable-prefix-caching", "--structured-outputs-config.backend",
                 "--max-model-len", "--served-model-name"):
        assert flag in script
    readme = (DEPLOY / "README.md").read_text()
    assert "CHARTDRAFT_CONFIG=deploy/vllm/chartdraft.toml" in readme


def test_settings_file_builds_a_backend(deploy_settings: Settings):
    s = deploy_settings
    b = OpenAICompatBackend(
        s.openai_base_urls, model=s.openai_model, schema_style=s.openai_schema_style,
        connect_timeout=s.connect_timeout_s, read_timeout=s.read_timeout_s, retries=s.retries,
        circuit_failures=s.circuit_failures, circuit_reset_s=s.circuit_reset_s,
        context_tokens=s.context_tokens,
    )
    assert len(b.replicas) == 2
    assert b.response_format(b.replicas[0], {"type": "object"})["type"] == "json_schema"
    b.close()
