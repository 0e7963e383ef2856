"""Every setting of a tidings node, read once from the environment (``TIDINGS_`` prefix).

A ``.env`` file in the current directory (``tidings init`` writes one) fills in what the
environment does not set; a variable that is set wins over the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TIDINGS_", extra="ignore", env_file=".env", env_file_encoding="utf-8"
    )

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    redis_url: str | None = None
    secret: SecretStr | None = None
    api_key: SecretStr | None = None
    #: Allowed browser origins; empty means same origin only, ``*`` must be asked for explicitly.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: permessage-deflate on websockets: off by default, it cost 18% throughput and p99 latency.
    ws_compression: bool = False
    #: Development hot reload of the live page (``serve --reload``): watch its files, tell pages.
    reload: bool = False

    history_limit: int = Field(1000, ge=10)
    done_ttl: int = Field(86_400, ge=1, description="seconds a finished job is kept")
    idle_ttl: int = Field(7 * 86_400, ge=1, description="seconds an idle unfinished job is kept")
    max_extra_bytes: int = Field(16_384, ge=256)
    #: Client events a socket may send per second, and at once: a page that reconnects
    #: re-subscribes every job it watches in one go.
    socket_rate: float = Field(50.0, gt=0)
    socket_burst: int = Field(1000, ge=1)
    #: Seconds within which progress-only updates of one job collapse into the latest.
    coalesce_window: float = Field(0.1, ge=0)
    #: Seconds of silence after which an SSE stream sends a keepalive comment.
    sse_keepalive: float = Field(15.0, gt=0)
    #: Seconds between the self-probes that tell a node its Redis subscription still hears.
    probe_interval: float = Field(5.0, gt=0)

    #: Wrong credentials (API key or token) one client address may present per second, and at
    #: once; past them it gets 429 until its bucket refills.
    auth_failure_rate: float = Field(2.0, gt=0)
    auth_failure_burst: int = Field(100, ge=1)

    upload_dir: Path | None = None
    max_upload_bytes: int = Field(100 * 1024 * 1024, ge=1)
    pipeline_concurrency: int = Field(4, ge=1)
    #: Processes that parse uploads, apart from the server's own (which must stay responsive).
    pipeline_processes: int = Field(2, ge=1)
    #: Seconds of parsing one file may take before it fails, saying so.
    pipeline_timeout: float = Field(60.0, gt=0)

    groq_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("GROQ_API_KEY", "TIDINGS_GROQ_API_KEY")
    )
    groq_base_url: str | None = Field(
        None, validation_alias=AliasChoices("GROQ_BASE_URL", "TIDINGS_GROQ_BASE_URL")
    )
    llm_model: str = "llama-3.1-8b-instant"

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < 32:
            raise ValueError(
                "TIDINGS_SECRET must be at least 32 bytes (HS256 wants a 256-bit key): "
                "tidings init writes a strong one to .env"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        """Refused here, in one sentence, rather than as a traceback from the first connect."""
        if value is None:
            return value
        expected = "TIDINGS_REDIS_URL must look like redis://HOST:6379/0 (or rediss://, unix://)"
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError:
            raise ValueError(f"{expected}; its port is not a number") from None
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"{expected}; it starts with {parts.scheme or value[:12]!r}")
        if parts.scheme != "unix" and not parts.hostname:
            raise ValueError(f"{expected}; it names no host")
        database = parts.path.lstrip("/")
        if parts.scheme != "unix" and database and not database.isdigit():
            raise ValueError(f"{expected}; the database after the / must be a number")
        del port
        return value

    @field_validator(
        "redis_url", "groq_base_url", "groq_api_key", "secret", "api_key", mode="before"
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """``GROQ_API_KEY=`` (as compose files and CI write it) means unset, not an empty key."""
        return None if isinstance(value, str) and not value.strip() else value
