"""API keys: random secrets handed out once, stored only as salted SHA-256 hashes in a JSON file.

A key reads ``fsk_<id>_<secret>``: the id finds the record, the 256-bit secret is checked against its
hash in constant time. The secrets are random, not chosen by people, so a fast hash is as safe as a
slow one here and keeps authentication off the request's critical path. The server re-reads the file
when it changes, so ``facesift keys revoke`` takes effect without a restart.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from facesift.errors import FacesiftError
from facesift.results import Serialisable, on_request

_KEY_PATTERN = re.compile(r"^fsk_([0-9a-f]{12})_([A-Za-z0-9_-]{20,})$")
GALLERY_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class ApiKeyError(FacesiftError):
    """A key operation failed (unknown key id, bad gallery name, unreadable keys file)."""


@dataclass(frozen=True)
class ApiKey(Serialisable):
    """What a key may do: everything (``admin``), or use the listed galleries (and detect/verify)."""

    key_id: str
    name: str
    admin: bool
    galleries: tuple[str, ...]
    created_at: float
    revoked_at: float | None = None
    salt: str = on_request(default="")  # only the keys file holds them
    digest: str = on_request(default="")

    def can_use(self, gallery: str) -> bool:
        return self.admin or gallery in self.galleries


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


class KeyStore:
    """The keys file. Thread-safe; writes are atomic (temporary file + rename) and private (mode 0600)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._keys: dict[str, ApiKey] = {}
        self._stamp: tuple[int, int] | None = None

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._keys, self._stamp = {}, None
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        try:
            records = json.loads(self.path.read_text())["keys"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ApiKeyError(f"The keys file {self.path} is unreadable ({exc}); restore it or move it away") from exc
        self._keys = {r["key_id"]: ApiKey(**{**r, "galleries": tuple(r["galleries"])}) for r in records}
        self._stamp = stamp

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        records = [k.to_dict(include=("salt", "digest")) for k in self._keys.values()]
        handle, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".keys-")
        with os.fdopen(handle, "w") as out:
            json.dump({"version": 1, "keys": records}, out, indent=1)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)
        self._stamp = None

    def list(self) -> list[ApiKey]:
        with self._lock:
            self._refresh()
            return sorted(self._keys.values(), key=lambda k: k.created_at)

    def active(self) -> list[ApiKey]:
        return [key for key in self.list() if key.revoked_at is None]

    def create(self, name: str, *, admin: bool = False, galleries: tuple[str, ...] = ()) -> tuple[ApiKey, str]:
        """A new key and its secret text, which is shown once and never stored."""
        bad = [g for g in galleries if not GALLERY_NAME.match(g)]
        if bad:
            raise ApiKeyError(f"Not gallery names: {', '.join(bad)} (use lower-case letters, digits, - and _)")
        if not admin and not galleries:
            raise ApiKeyError("A key needs --admin or at least one --gallery it may use")
        key_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(32), secrets.token_hex(16)
        key = ApiKey(key_id, name, admin, tuple(galleries), time.time(), None, salt, _digest(salt, secret))
        with self._lock:
            self._refresh()
            self._keys[key_id] = key
            self._save()
        return key, f"fsk_{key_id}_{secret}"

    def revoke(self, key_id: str) -> ApiKey:
        with self._lock:
            self._refresh()
            if key_id not in self._keys:
                raise ApiKeyError(f"No key with id {key_id!r}; `facesift keys list` shows the ids")
            old = self._keys[key_id]
            self._keys[key_id] = key = dataclasses.replace(old, revoked_at=old.revoked_at or time.time())
            self._save()
        return key

    def authenticate(self, text: str | None) -> ApiKey | None:
        """The active key ``text`` stands for, or None."""
        match = _KEY_PATTERN.match(text or "")
        if match is None:
            return None
        with self._lock:
            self._refresh()
            key = self._keys.get(match.group(1))
        if key is None or key.revoked_at is not None:
            return None
        return key if hmac.compare_digest(key.digest, _digest(key.salt, match.group(2))) else None


def first_admin_key(settings, stream: IO[str]) -> None:  # settings: a ServiceConfig
    """When the keys file holds no active key, create an admin key and hand it over once: on ``stream`` if
    it is a terminal, else in ``<data_dir>/first-admin-key.txt`` (mode 0600; delete it once read)."""
    store = KeyStore(settings.keys_path)
    if store.active():
        return
    _, secret = store.create("first admin", admin=True)
    if stream.isatty():
        stream.write(f"No API keys yet: created an admin key. It is shown only now; keep it safe:\n\n  {secret}\n\n")
        return
    path = Path(settings.data_dir) / "first-admin-key.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(handle, 0o600)
    with os.fdopen(handle, "w") as out:
        out.write(secret + "\n")
    stream.write(f"No API keys yet: created an admin key and wrote it to {path} (readable by you only); "
                 "read it, keep it safe, delete the file\n")

