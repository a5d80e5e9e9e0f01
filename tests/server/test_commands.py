"""`facesift serve` (the README's main job) and `facesift keys create|list|revoke`."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from typer.testing import CliRunner

from facesift.cli import app
from facesift.server import KeyStore

REPO = Path(__file__).resolve().parents[2]


def test_keys_create_list_revoke(tmp_path, monkeypatch):
    monkeypatch.setenv("FACESIFT_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    created = runner.invoke(app, ["keys", "create", "ops", "--admin"])
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip().splitlines()[-1]
    key = KeyStore(tmp_path / "keys.json").authenticate(secret)
    assert key is not None and key.admin and key.name == "ops"
    scoped = runner.invoke(app, ["keys", "create", "shop", "--gallery", "customers"])
    assert scoped.exit_code == 0 and KeyStore(tmp_path / "keys.json").authenticate(scoped.stdout.split()[-1]).galleries == ("customers",)
    listed = runner.invoke(app, ["keys", "list"])
    assert key.key_id in listed.stdout and "customers" in listed.stdout and secret not in listed.stdout
    assert runner.invoke(app, ["keys", "revoke", key.key_id]).exit_code == 0
    assert KeyStore(tmp_path / "keys.json").authenticate(secret) is None
    unknown = runner.invoke(app, ["keys", "revoke", "000000000000"])
    assert unknown.exit_code == 2 and "keys list" in unknown.output
    rightless = runner.invoke(app, ["keys", "create", "nobody"])
    assert rightless.exit_code == 2 and "--admin" in rightless.output
    bad_config = runner.invoke(app, ["keys", "list", "--config", str(tmp_path / "missing.toml")])
    assert bad_config.exit_code == 2 and "No config file" in bad_config.output


def test_serve_hands_over_a_first_admin_key_and_serves_with_it(tmp_path):
    """Its stderr is a pipe here, as under a service manager: the key goes to a private file, not the log."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "service.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\nport = {port}\nworkers = 1\n')
    env = os.environ | {"PYTHONPATH": str(REPO), "FACESIFT_CONFIG": str(config)}
    server = subprocess.Popen([sys.executable, "-m", "facesift", "serve"], cwd=REPO, env=env,
                              stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        printed = ""
        for line in server.stderr:  # bounded: the process prints a few lines, then serves
            printed += line
            if "Open http://" in line:
                break
        assert not re.search(r"fsk_[0-9a-f]{12}_", printed), "the first admin key went to stderr"
        saved = tmp_path / "data" / "first-admin-key.txt"
        assert str(saved) in printed and saved.stat().st_mode & 0o077 == 0
        key = saved.read_text().strip()
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                me = requests.get(url + "/v1/me", headers={"X-API-Key": key}, timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and server.poll() is None, "the service did not start"
                time.sleep(0.2)
        assert me.status_code == 200 and me.json()["admin"] is True
        assert (tmp_path / "data" / "keys.json").is_file()
    finally:
        server.terminate()
        server.wait(timeout=30)
