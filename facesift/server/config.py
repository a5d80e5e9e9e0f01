"""Service settings: defaults, then a TOML file, then ``FACESIFT_*`` environment variables, then arguments.

Everything the operator may want to change lives here, so ``docs/service.md`` can list it in one table.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from facesift.registry import user_dir


class ServiceConfig(BaseSettings):
    """How ``facesift serve`` runs. Environment variables are the field names upper-cased with ``FACESIFT_``."""

    model_config = SettingsConfigDict(env_prefix="FACESIFT_", extra="forbid")

    data_dir: Path = Field(default_factory=lambda: user_dir("FACESIFT_DATA_DIR", "XDG_DATA_HOME", ".local/share", "facesift", "service"),
                           description="Galleries live under <data_dir>/galleries/<name>/")
    gallery_backend: str = Field("sqlite", description="URI scheme of each gallery: sqlite or milvus-lite")
    keys_file: Path | None = Field(None, description="Hashed API keys (JSON); default <data_dir>/keys.json")
    host: str = Field("127.0.0.1", description="Address to listen on; loopback unless you put a proxy in front")
    port: int = Field(8000, ge=0, le=65535)
    detector: str = "yunet"
    model: str = "sface"
    max_upload_bytes: int = Field(10_000_000, gt=0, description="Largest request body (413 above it)")
    max_pixels: int = Field(40_000_000, gt=0, description="Largest image in pixels (413 above it)")
    max_images: int = Field(20, gt=0, description="Most images in one enrolment request")
    workers: int = Field(2, gt=0, description="Inference threads (about one per core)")
    queue_size: int = Field(16, ge=0, description="Requests that may wait for a worker; beyond them 503")
    retry_after: int = Field(2, ge=1, description="Seconds a 503 asks the client to wait")
    # what a slow or hostile client may hold (docs/service.md, "Limits and timeouts")
    header_timeout: float = Field(10.0, gt=0, description="Seconds a client has to send a request's headers; then the connection is closed")
    body_timeout: float = Field(60.0, gt=0, description="Seconds a client has to send a request's body; then 408")
    keep_alive_timeout: int = Field(5, ge=1, description="Seconds an idle keep-alive connection stays open")
    max_connections: int = Field(256, gt=0, description="Open connections at most; one more is closed at once")
    decode_pixels: int | None = Field(
        8_000_000, gt=0, description="A larger JPEG is decoded reduced (DCT scaling) to at least this many pixels"
    )
    log_person_ids: bool = Field(False, description="Write person ids in the access log as they are (default: a per-run hash)")

    @property
    def keys_path(self) -> Path:
        return self.keys_file or self.data_dir / "keys.json"

    @property
    def galleries_dir(self) -> Path:
        return self.data_dir / "galleries"


def load_config(path: str | os.PathLike | None = None, **overrides) -> ServiceConfig:
    """Settings from ``path`` (TOML; default ``$FACESIFT_CONFIG``), overridden by the environment and ``overrides``."""
    path = path or os.environ.get("FACESIFT_CONFIG")
    if path is not None and not Path(path).is_file():
        raise FileNotFoundError(f"No config file at {path}")
    given = {key: value for key, value in overrides.items() if value is not None}

    class _FromFile(ServiceConfig):
        @classmethod
        def settings_customise_sources(
            cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
            if path is not None:
                sources += (TomlConfigSettingsSource(settings_cls, toml_file=path),)
            return sources

    return _FromFile(**given)
