"""The HTTP service: a FastAPI app (REST API under /v1, a web page at /, docs at /docs) run by Uvicorn.

    from facesift.server import create_app, load_config
    app = create_app(load_config("service.toml"))
"""

from __future__ import annotations

from typing import Any

from facesift.server.config import ServiceConfig, load_config
from facesift.server.keys import ApiKey, KeyStore

__all__ = ["ApiKey", "KeyStore", "ServiceConfig", "create_app", "load_config"]


def __getattr__(name: str) -> Any:
    if name == "create_app":  # imported on use, so `facesift keys ...` does not load FastAPI and the models
        from facesift.server.app import create_app

        return create_app
    raise AttributeError(name)
