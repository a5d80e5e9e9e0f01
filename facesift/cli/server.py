"""``facesift serve`` and ``facesift keys create|revoke|list``."""

from __future__ import annotations

import datetime
import logging
from pathlib import Path

import typer
from rich.table import Table

from facesift.cli.common import console, errors, print_error
from facesift.server.keys import ApiKeyError, KeyStore, first_admin_key

keys_app = typer.Typer(help="Create, revoke and list the service's API keys.", no_args_is_help=True)

ConfigOption = typer.Option(None, "--config", "-c", help="TOML settings file (default $FACESIFT_CONFIG).")


def _config(path: Path | None, **overrides):
    try:
        from facesift.server.config import load_config
    except ImportError as exc:
        print_error(f"the service needs its extra ({exc.name} is missing): pip install 'facesift[serve]'")
        raise typer.Exit(1)
    try:
        return load_config(path, **overrides)
    except (FileNotFoundError, ValueError) as exc:
        print_error(str(exc))
        raise typer.Exit(2)


def serve(
    config: Path | None = ConfigOption,
    host: str | None = typer.Option(None, help="Address to listen on (default 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port (default 8000)."),
    data_dir: Path | None = typer.Option(None, help="Where galleries and the keys file live."),
) -> None:
    """Start the service: REST API under /v1, the web page at /, API docs at /docs.

    On first start (no keys yet) it creates an admin key: printed once on a terminal, else written to a
    private file (0600) in the data folder, so it never lands in a log.
    """
    import uvicorn

    from facesift.server.app import create_app
    from facesift.server.connections import release_large_buffers, server_config

    settings = _config(config, host=host, port=port, data_dir=data_dir)
    first_admin_key(settings, errors.file)
    errors.print(f"Open http://{settings.host}:{settings.port}/ and sign in with a key; API docs at /docs")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    release_large_buffers()
    uvicorn.Server(server_config(create_app(settings), settings)).run()


@keys_app.command("create")
def create_key(
    name: str = typer.Argument(..., help="Who or what the key is for."),
    admin: bool = typer.Option(False, "--admin", help="May do everything, including creating and deleting galleries."),
    gallery: list[str] = typer.Option([], "--gallery", "-g", help="A gallery the key may use (repeat for more)."),
    config: Path | None = ConfigOption,
) -> None:
    """Create a key and print it (once; only its hash is stored)."""
    store = KeyStore(_config(config).keys_path)
    try:
        key, secret = store.create(name, admin=admin, galleries=tuple(gallery))
    except ApiKeyError as exc:
        print_error(str(exc))
        raise typer.Exit(2)
    errors.print(f"created key {key.key_id} ({'admin' if admin else 'galleries: ' + ', '.join(gallery)}); shown only now:")
    print(secret)


@keys_app.command("revoke")
def revoke_key(
    key_id: str = typer.Argument(..., help="The key id (see `facesift keys list`)."),
    config: Path | None = ConfigOption,
) -> None:
    """Revoke a key; a running service refuses it from its next request."""
    try:
        KeyStore(_config(config).keys_path).revoke(key_id)
    except ApiKeyError as exc:
        print_error(str(exc))
        raise typer.Exit(2)
    errors.print(f"revoked key {key_id}")


@keys_app.command("list")
def list_keys(config: Path | None = ConfigOption) -> None:
    """List keys (ids, names, rights; never the secrets)."""
    store = KeyStore(_config(config).keys_path)
    table = Table("id", "name", "rights", "created", "status", title=str(store.path))
    for key in store.list():
        when = datetime.datetime.fromtimestamp(key.created_at).strftime("%Y-%m-%d %H:%M")
        rights = "admin" if key.admin else ", ".join(key.galleries)
        table.add_row(key.key_id, key.name, rights, when, "[red]revoked[/]" if key.revoked_at else "[green]active[/]")
    console.print(table)
