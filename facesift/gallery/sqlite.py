"""Embedded gallery: one SQLite file (WAL) is the truth; a usearch HNSW index beside it is a cache.

Every sample insert or delete also writes a row to a ``changes`` log (by trigger, in the same
transaction), so the index can always be brought up to date: a process replays the log past the point
its index reflects, a process that sees another's commit (``PRAGMA data_version``) does the same before
searching, and an index file that is missing, unreadable or too far behind is rebuilt from the samples.
Below ``exact_below`` samples the index is searched exhaustively (as fast as the graph there, and exact).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
from usearch.index import Index

from facesift.errors import GalleryClosedError, GalleryError, PersonExistsError, PersonNotFoundError, SampleNotFoundError
from facesift.gallery.registry import register_backend, split_uri
from facesift.gallery.results import Person, Sample, SampleInfo

SCHEMA_VERSION = 1
#: how many samples the index proposes per query at least, to be re-ranked exactly
RERANK = 16
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS persons (
    pkey INTEGER PRIMARY KEY AUTOINCREMENT, person_id TEXT NOT NULL UNIQUE,
    metadata TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS samples (
    key INTEGER PRIMARY KEY AUTOINCREMENT, sample_id TEXT NOT NULL UNIQUE,
    pkey INTEGER NOT NULL REFERENCES persons(pkey) ON DELETE CASCADE,
    embedding BLOB NOT NULL, model TEXT NOT NULL, quality REAL NOT NULL,
    content_sha256 TEXT NOT NULL, created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS samples_person ON samples(pkey);
CREATE INDEX IF NOT EXISTS samples_hash ON samples(content_sha256);
CREATE TABLE IF NOT EXISTS images (key INTEGER PRIMARY KEY REFERENCES samples(key) ON DELETE CASCADE, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, key INTEGER NOT NULL, added INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS sample_added AFTER INSERT ON samples BEGIN
    INSERT INTO changes (key, added) VALUES (new.key, 1); END;
CREATE TRIGGER IF NOT EXISTS sample_removed AFTER DELETE ON samples BEGIN
    INSERT INTO changes (key, added) VALUES (old.key, 0); END;
"""


@register_backend("sqlite")
class SQLiteStore:
    """SQLite + usearch HNSW (a :class:`~facesift.gallery.store.GalleryStore`). Many processes may open the same
    file; writers take turns (busy timeout)."""

    backend = "sqlite"
    supports_images = True

    def __init__(
        self,
        uri: str,
        *,
        model: str,
        dims: int,
        exact_below: int = 15_000,
        connectivity: int = 32,
        expansion_add: int = 128,
        expansion_search: int = 128,
        dtype: str = "i8",
        busy_timeout: float = 30.0,
        save_every: int = 100_000,
    ) -> None:
        self.uri, self.model, self.dims = uri, model, dims
        self._lock = threading.RLock()  # its own maintenance (save, rebuild, settings) may be called directly
        _, rest = split_uri(uri)
        if not rest or rest == ":memory:":
            raise GalleryError("An SQLite gallery needs a file path, e.g. sqlite:///data/gallery.db")
        self.path = Path(rest)
        if not self.path.parent.is_dir():
            raise GalleryError(f"The folder {self.path.parent} does not exist; create it or choose another gallery path")
        self.index_path = self.path.with_name(self.path.name + ".usearch")
        self._sidecar = self.path.with_name(self.path.name + ".usearch.json")
        self.exact_below = exact_below
        self.save_every = save_every
        self._index_options = dict(connectivity=connectivity, expansion_add=expansion_add, expansion_search=expansion_search, dtype=dtype)
        _create_private(self.path)  # SQLite gives its WAL and shared-memory files the same mode
        try:
            self._db = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA secure_delete=ON")  # deleted rows are overwritten with zeros, not left in free pages
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # an acknowledged sample survives power loss too
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
            with self._write():
                self._init_meta()
        except sqlite3.DatabaseError as exc:
            raise GalleryError(f"{self.path} is not a usable SQLite gallery: {exc}") from exc
        self._data_version = -1
        self._unsaved = 0
        #: the in-memory index still holds removed vectors' bytes (usearch only marks them): rebuild before saving
        self._holds_removed = False
        self._open_index()

    # --- transactions --------------------------------------------------------------------------------
    class _Transaction:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, kind, *exc: object) -> None:
            self.db.execute("COMMIT" if kind is None else "ROLLBACK")

    def _write(self) -> "_Transaction":
        return self._Transaction(self._db)

    def _init_meta(self) -> None:
        stored = dict(self._db.execute("SELECT key, value FROM meta"))
        if not stored:
            rows = {"schema_version": SCHEMA_VERSION, "model": self.model, "dims": self.dims, "pruned_through": 0}
            self._db.executemany("INSERT INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in rows.items()])
            return
        if stored.get("model") != self.model or int(stored.get("dims", -1)) != self.dims:
            raise GalleryError(
                f"{self.path} holds {stored.get('dims')}-d {stored.get('model')!r} embeddings; open it with model={stored.get('model')!r}"
            )
        if int(stored.get("schema_version", 0)) != SCHEMA_VERSION:
            raise GalleryError(f"{self.path} has schema version {stored.get('schema_version')}; this facesift reads {SCHEMA_VERSION}")

    # --- the index cache -----------------------------------------------------------------------------
    @property
    def expansion_search(self) -> int:
        """HNSW search breadth: higher finds the true nearest more often, slower (see benchmarks/gallery.py)."""
        return self._index_options["expansion_search"]

    @expansion_search.setter
    def expansion_search(self, value: int) -> None:
        with self._lock:
            self._index_options["expansion_search"] = int(value)
            self._index.expansion_search = int(value)

    def _new_index(self) -> Index:
        return Index(ndim=self.dims, metric="ip", **self._index_options)

    def _open_index(self) -> None:
        """Load the persisted index if it is usable, else rebuild it; then replay what it lacks."""
        self._index, self._seq = None, 0
        saved = self._read_sidecar()
        pruned = self._meta_int("pruned_through")
        if saved is not None and saved["seq"] >= pruned and saved.get("dims") == self.dims and self.index_path.is_file():
            try:
                index = self._new_index()
                index.load(str(self.index_path))
                index.expansion_search = self._index_options["expansion_search"]
                self._index, self._seq = index, int(saved["seq"])
            except (RuntimeError, ValueError, OSError):
                self._index = None
        pending = self._db.execute("SELECT COUNT(*) FROM changes WHERE seq > ?", (self._seq,)).fetchone()[0]
        if self._index is None or pending > max(10_000, len(self._index) // 2):
            self.rebuild_index()
        else:
            self._catch_up()
            if len(self._index) != self.counts()[1]:
                self.rebuild_index()  # a stale or foreign file: never trust it over SQLite

    def rebuild_index(self) -> None:
        """Build the index from every sample in SQLite (what the file is a cache of) and save it."""
        with self._lock:
            self._db.execute("BEGIN")  # one snapshot: samples and the change log agree
            try:
                seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0]
                index = self._new_index()
                cursor = self._db.execute("SELECT key, embedding FROM samples")
                while rows := cursor.fetchmany(50_000):
                    keys = np.fromiter((r[0] for r in rows), dtype=np.uint64, count=len(rows))
                    index.add(keys, _vectors([r[1] for r in rows], self.dims), threads=os.cpu_count() or 1)
            finally:
                self._db.execute("COMMIT")
            self._index, self._seq, self._holds_removed = index, seq, False
            self.save_index()

    def _catch_up(self) -> None:
        """Apply every logged change past the index's position (ours or another process's)."""
        if self._seq < self._meta_int("pruned_through"):
            self._open_index()  # the log we need was pruned: the saved file covers it
            return
        rows = self._db.execute("SELECT seq, key, added FROM changes WHERE seq > ? ORDER BY seq", (self._seq,)).fetchall()
        if not rows:
            return
        final = {key: added for _, key, added in rows}  # the last change to a key wins
        gone = np.array([k for k, added in final.items() if not added and k in self._index], dtype=np.uint64)
        if len(gone):
            self._index.remove(gone)
            self._holds_removed = True
        fresh = [k for k, added in final.items() if added]
        for start in range(0, len(fresh), 900):
            chunk = fresh[start : start + 900]
            found = self._db.execute(f"SELECT key, embedding FROM samples WHERE key IN ({_marks(chunk)})", chunk).fetchall()
            found = [(k, blob) for k, blob in found if k not in self._index]
            if found:
                keys = np.array([k for k, _ in found], dtype=np.uint64)
                self._index.add(keys, _vectors([b for _, b in found], self.dims), threads=os.cpu_count() or 1)
        self._seq = rows[-1][0]
        self._unsaved += len(rows)

    def _sync(self) -> None:
        """Before a read: if another connection committed since we last looked, catch up."""
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version:
            self._data_version = version
            self._catch_up()

    def save_index(self) -> None:
        """Persist the index beside the database (atomically; only if newer than the file there)."""
        if self._holds_removed:  # never write removed faces' vectors back to disk
            self.rebuild_index()
            return
        with self._lock, self._index_file_lock():
            saved = self._read_sidecar()
            if saved is not None and saved["seq"] >= self._seq and self.index_path.is_file():
                self._unsaved = 0
                return
            tmp = self.index_path.with_name(f"{self.index_path.name}.{os.getpid()}.tmp")
            self._index.save(str(tmp))
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.index_path)
            sidecar = {"seq": self._seq, "samples": len(self._index), "dims": self.dims, "saved_at": time.time()}
            tmp_json = self._sidecar.with_name(f"{self._sidecar.name}.{os.getpid()}.tmp")
            tmp_json.write_text(json.dumps(sidecar))
            os.chmod(tmp_json, 0o600)
            os.replace(tmp_json, self._sidecar)
            # The file now covers everything up to seq: older log rows are no longer needed by anyone
            # opening it; a process whose index is older than this rebuilds (see _catch_up).
            with self._write():
                self._db.execute("DELETE FROM changes WHERE seq <= ?", (self._seq,))
                self._db.execute("UPDATE meta SET value = ? WHERE key = 'pruned_through'", (str(self._seq),))
            self._unsaved = 0

    @contextlib.contextmanager
    def _index_file_lock(self) -> Iterator[None]:
        """Processes take turns writing or removing the index file."""
        handle = os.open(self.path.with_name(self.path.name + ".usearch.lock"), os.O_CREAT | os.O_WRONLY, 0o600)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield
        finally:
            os.close(handle)

    def _erase_deleted(self) -> None:
        """Make a deletion real on disk. SQLite has zeroed the rows (secure_delete); the WAL still holds the
        pages as they were, so it is checkpointed into the file and truncated; the index file keeps removed
        vectors' bytes (usearch only marks them), so it is removed, to be rebuilt from SQLite when saved."""
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        with self._index_file_lock():
            self._sidecar.unlink(missing_ok=True)
            self.index_path.unlink(missing_ok=True)

    def _read_sidecar(self) -> dict | None:
        try:
            saved = json.loads(self._sidecar.read_text())
            return saved if isinstance(saved.get("seq"), int) else None
        except (OSError, ValueError, AttributeError):
            return None

    def _meta_int(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        with self._lock:
            if getattr(self, "_db", None) is None or isinstance(self._db, _Closed):
                return
            if self._index is not None and self._unsaved:
                self.save_index()
            self._db.close()
            self._db = _Closed(self.path)

    # --- storage primitives --------------------------------------------------------------------------
    def add_persons(self, rows: Sequence[tuple[str, dict, float]]) -> list[Person]:
        try:
            with self._write() as db:
                db.executemany(
                    "INSERT INTO persons (person_id, metadata, created_at) VALUES (?, ?, ?)",
                    [(pid, json.dumps(meta), created) for pid, meta, created in rows],
                )
        except sqlite3.IntegrityError:
            taken = sorted(self.existing([pid for pid, _, _ in rows]))
            raise PersonExistsError(f"A person {taken[0]!r} already exists; enrol more samples with enroll(), or remove() first") from None
        return [Person(pid, meta, 0, created) for pid, meta, created in rows]

    def existing(self, person_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        ids = list(person_ids)
        for start in range(0, len(ids), 900):
            chunk = ids[start : start + 900]
            found.update(r[0] for r in self._db.execute(f"SELECT person_id FROM persons WHERE person_id IN ({_marks(chunk)})", chunk))
        return found

    _PERSON_SQL = (
        "SELECT p.person_id, p.metadata, p.created_at, (SELECT COUNT(*) FROM samples s WHERE s.pkey = p.pkey) FROM persons p"
    )

    def get_person(self, person_id: str) -> Person | None:
        row = self._db.execute(self._PERSON_SQL + " WHERE p.person_id = ?", (person_id,)).fetchone()
        return _person(row) if row else None

    def list_persons(self, offset: int, limit: int, contains: str) -> list[Person]:
        # an empty ``contains`` is in every id, so one query serves both cases
        rows = self._db.execute(
            self._PERSON_SQL + " WHERE instr(lower(p.person_id), lower(?)) > 0 ORDER BY p.pkey LIMIT ? OFFSET ?", (contains, limit, offset)
        )
        return [_person(row) for row in rows]

    def samples_of(self, person_id: str) -> list[SampleInfo]:
        rows = self._db.execute(
            "SELECT s.sample_id, s.quality, s.created_at, i.key IS NOT NULL FROM samples s JOIN persons p USING (pkey) "
            "LEFT JOIN images i ON i.key = s.key WHERE p.person_id = ? ORDER BY s.key", (person_id,)
        )
        return [SampleInfo(sid, person_id, float(quality), float(created), bool(image)) for sid, quality, created, image in rows]

    def metadata(self, person_ids: Iterable[str]) -> dict[str, dict]:
        ids = list(person_ids)
        rows = self._db.execute(f"SELECT person_id, metadata FROM persons WHERE person_id IN ({_marks(ids)})", ids)
        return {pid: json.loads(meta) for pid, meta in rows}

    def remove_person(self, person_id: str) -> int:
        with self._write() as db:
            removed = db.execute(
                "DELETE FROM samples WHERE pkey = (SELECT pkey FROM persons WHERE person_id = ?)", (person_id,)
            ).rowcount
            db.execute("DELETE FROM persons WHERE person_id = ?", (person_id,))
        self._after_write()
        self._erase_deleted()
        return removed

    def remove_sample(self, sample_id: str) -> None:
        with self._write() as db:
            if db.execute("DELETE FROM samples WHERE sample_id = ?", (sample_id,)).rowcount == 0:
                raise SampleNotFoundError(f"No sample {sample_id!r} in the gallery")
        self._after_write()
        self._erase_deleted()

    def sample_image(self, sample_id: str) -> bytes | None:
        row = self._db.execute("SELECT key FROM samples WHERE sample_id = ?", (sample_id,)).fetchone()
        if row is None:
            raise SampleNotFoundError(f"No sample {sample_id!r} in the gallery")
        image = self._db.execute("SELECT data FROM images WHERE key = ?", (row[0],)).fetchone()
        return bytes(image[0]) if image else None

    def has_sample(self, sample_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM samples WHERE sample_id = ?", (sample_id,)).fetchone() is not None

    def add_samples(self, samples: Sequence[Sample]) -> None:
        if not samples:
            return
        with self._write() as db:
            people: dict[str, int] = {}
            ids = list(dict.fromkeys(s.person_id for s in samples))
            for start in range(0, len(ids), 900):
                chunk = ids[start : start + 900]
                people.update(db.execute(f"SELECT person_id, pkey FROM persons WHERE person_id IN ({_marks(chunk)})", chunk))
            if len(people) < len(ids):  # removed by another process since it was checked
                raise PersonNotFoundError(f"No person {sorted(set(ids) - set(people))[0]!r} in the gallery (removed meanwhile?)")
            insert = ("INSERT INTO samples (sample_id, pkey, embedding, model, quality, content_sha256, created_at) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?)")

            def row(s: Sample) -> tuple:
                vector = np.asarray(s.embedding, "<f4").tobytes()
                return (s.sample_id, people[s.person_id], vector, s.model, s.quality, s.content_sha256, s.created_at)

            db.executemany(insert, [row(s) for s in samples if s.image is None])
            for sample in (s for s in samples if s.image is not None):
                cursor = db.execute(insert, row(sample))
                db.execute("INSERT INTO images VALUES (?, ?)", (cursor.lastrowid, sample.image))
        self._after_write()

    def _after_write(self) -> None:
        self._sync()
        self._catch_up()  # our own commits do not move data_version
        if self._unsaved >= self.save_every:
            self.save_index()

    def find_by_hash(self, content_sha256: str) -> tuple[str, str] | None:
        row = self._db.execute(
            "SELECT s.sample_id, p.person_id FROM samples s JOIN persons p USING (pkey) WHERE s.content_sha256 = ? LIMIT 1",
            (content_sha256,),
        ).fetchone()
        return (row[0], row[1]) if row else None

    def nearest(self, vectors: np.ndarray, count: int) -> list[list[tuple[str, str, float]]]:
        """The index proposes at least ``RERANK`` samples per query; their float32 embeddings from SQLite
        give the exact similarities they are ranked by (so the true nearest wins whenever it was proposed)."""
        self._sync()
        if len(self._index) == 0:
            return [[] for _ in vectors]
        exact = len(self._index) < self.exact_below
        vectors = np.ascontiguousarray(vectors, np.float32)
        matches = self._index.search(vectors, min(max(count, RERANK), len(self._index)), exact=exact)
        keys = np.atleast_2d(matches.keys)
        counts = np.atleast_1d(matches.counts if hasattr(matches, "counts") else len(matches))  # one query: Matches
        wanted = sorted({int(k) for row, n in zip(keys, counts, strict=True) for k in row[:n]})
        found: dict[int, tuple[str, str, bytes]] = {}
        for start in range(0, len(wanted), 900):
            chunk = wanted[start : start + 900]
            for key, sample_id, person_id, blob in self._db.execute(
                f"SELECT s.key, s.sample_id, p.person_id, s.embedding FROM samples s JOIN persons p USING (pkey) "
                f"WHERE s.key IN ({_marks(chunk)})", chunk,
            ):
                found[key] = (sample_id, person_id, blob)
        results = []
        for vector, row, n in zip(vectors, keys, counts, strict=True):
            present = [found[int(k)] for k in row[:n] if int(k) in found]
            if not present:
                results.append([])
                continue
            sims = _vectors([blob for _, _, blob in present], self.dims) @ vector
            order = np.argsort(-sims, kind="stable")[:count]
            results.append([(present[i][0], present[i][1], float(sims[i])) for i in order])
        return results

    def person_vectors(self, person_ids: Sequence[str]) -> dict[str, tuple[list[str], np.ndarray]]:
        ids = list(person_ids)
        grouped: dict[str, tuple[list[str], list[bytes]]] = {}
        rows = self._db.execute(
            f"SELECT p.person_id, s.sample_id, s.embedding FROM samples s JOIN persons p USING (pkey) WHERE p.person_id IN ({_marks(ids)})",
            ids,
        )
        for person_id, sample_id, blob in rows:
            entry = grouped.setdefault(person_id, ([], []))
            entry[0].append(sample_id)
            entry[1].append(blob)
        return {pid: (sample_ids, _vectors(blobs, self.dims)) for pid, (sample_ids, blobs) in grouped.items()}

    def iter_samples(self, batch: int) -> Iterator[list[Sample]]:
        last = 0
        while True:
            rows = self._db.execute(
                "SELECT s.key, s.sample_id, p.person_id, s.embedding, s.model, s.quality, s.content_sha256, s.created_at, i.data "
                "FROM samples s JOIN persons p USING (pkey) LEFT JOIN images i ON i.key = s.key WHERE s.key > ? ORDER BY s.key LIMIT ?",
                (last, batch),
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [
                Sample(sid, pid, np.frombuffer(blob, "<f4").astype(np.float32), model, quality, sha, created,
                       bytes(image) if image is not None else None)
                for _, sid, pid, blob, model, quality, sha, created, image in rows
            ]

    def counts(self) -> tuple[int, int]:
        persons = self._db.execute("SELECT COUNT(*) FROM persons").fetchone()[0]
        samples = self._db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
        return persons, samples

    def index_info(self) -> dict[str, Any]:
        self._sync()
        size = len(self._index)
        return {
            "kind": "usearch HNSW (inner product)",
            "vectors": size,
            "search": "exact" if size < self.exact_below else "approximate",
            "exact_below": self.exact_below,
            **self._index_options,
            # a loaded file keeps the settings it was built with, whatever this process asked for
            "connectivity": int(self._index.connectivity),
            "dtype": str(self._index.dtype).rsplit(".", 1)[-1].lower(),
            "file": str(self.index_path),
            "file_bytes": self.index_path.stat().st_size if self.index_path.is_file() else 0,
            "database_bytes": self.path.stat().st_size,
            "memory_bytes": int(self._index.memory_usage),
            "log_position": self._seq,
        }


class _Closed:
    """Stands in for the connection of a closed gallery, so a call that was under way when another thread
    closed it (a service deleting the gallery) gets a typed error instead of an AttributeError."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __getattr__(self, name: str) -> Any:
        raise GalleryClosedError(f"The gallery {self.path} was closed (deleted?) while in use; open it again")


def _create_private(path: Path) -> None:
    """A new gallery file is readable by its owner only (0600): it holds faces."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass


def _person(row: tuple) -> Person:
    person_id, metadata, created_at, count = row
    return Person(person_id, json.loads(metadata), int(count), float(created_at))


def _vectors(blobs: Sequence[bytes], dims: int) -> np.ndarray:
    return np.frombuffer(b"".join(blobs), dtype="<f4").astype(np.float32).reshape(len(blobs), dims)


def _marks(items: Iterable) -> str:
    return ",".join("?" * len(list(items)))
