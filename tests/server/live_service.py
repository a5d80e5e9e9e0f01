"""A real facesift service on a free loopback port (uvicorn in a thread), for the API and browser tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from facesift.server import KeyStore, ServiceConfig, create_app
from facesift.server.connections import server_config


@dataclass
class LiveService:
    url: str
    admin_key: str
    config: ServiceConfig

    @property
    def keys(self) -> KeyStore:
        return KeyStore(self.config.keys_path)

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"X-API-Key": key or self.admin_key}


@contextmanager
def run_service(config: ServiceConfig, app=None) -> Iterator[LiveService]:
    """Start the app (``create_app(config)`` unless given) on 127.0.0.1 (port chosen by the OS), wait until it
    serves, stop it afterwards."""
    _, admin = KeyStore(config.keys_path).create("tests admin", admin=True)
    server = uvicorn.Server(server_config(app or create_app(config), config, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="facesift-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("The test service did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield LiveService(f"http://127.0.0.1:{port}", admin, config)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
