"""Photo collections grouped by person over REST: upload photos, look at the clusters, merge, split, confirm, enrol.

Each key has its own collections, one state file each under ``<data_dir>/clusters/<key id>/<name>.json``
(the same file ``facesift cluster`` writes), with a small thumbnail per face so the page can show them.
"""

# (no `from __future__ import annotations`: FastAPI reads the endpoint annotations, defined in a function)
import hashlib
import threading
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import Field
from starlette.exceptions import HTTPException

from facesift.cluster import ClusterError, Collection
from facesift.server.inputs import Params, openapi_body, read_request
from facesift.server.keys import GALLERY_NAME


class MergeBody(Params):
    clusters: list[int] = Field(min_length=2, description="The cluster to keep, then those merged into it")


class SplitBody(Params):
    cluster: int
    faces: list[str] | None = Field(None, description="Face ids to move to a new cluster; none: cut the cluster in two")


class ConfirmBody(Params):
    cluster: int
    name: str = Field(min_length=1, max_length=200, description="Who the cluster is")


class EnrolBody(Params):
    gallery: str = Field(description="Enrol each confirmed cluster as a person of this gallery")


class NoFields(Params):
    pass


def add_cluster_endpoints(app: FastAPI) -> None:
    """/v1/clusters/{name}: photos in, clusters out, and the corrections."""
    from facesift.server.app import Caller, _allowed, _service

    locks: dict[Path, threading.Lock] = {}
    guard = threading.Lock()

    def state_path(request: Request, key, name: str) -> Path:
        if not GALLERY_NAME.fullmatch(name):
            raise HTTPException(422, "A collection name is lower-case letters, digits, - and _")
        return _service(request).config.data_dir / "clusters" / key.key_id / f"{name}.json"

    def locked(path: Path) -> threading.Lock:
        with guard:
            return locks.setdefault(path, threading.Lock())

    def opened(path: Path, *, must_exist: bool = True) -> Collection:
        if must_exist and not path.is_file():
            raise HTTPException(404, f"No collection {path.stem!r}; upload photos to it first")
        try:
            return Collection(path)
        except ClusterError as exc:
            raise HTTPException(500, str(exc)) from None

    def view(collection: Collection) -> dict[str, Any]:
        return {"similarity": collection.similarity, "false_match_rate": collection.false_match_rate, "faces": len(collection.faces),
                "clusters": [c.to_dict() for c in collection.clusters()]}

    def correct(request: Request, key, name: str, action) -> dict[str, Any]:
        path = state_path(request, key, name)
        with locked(path):
            collection = opened(path)
            try:
                action(collection)
            except ClusterError as exc:
                raise HTTPException(422, str(exc)) from None
            collection.save()
            return view(collection)

    @app.post("/v1/clusters/{name}/photos", tags=["clusters"], openapi_extra=openapi_body(NoFields, ("images",), many=True))
    async def add_photos(request: Request, name: str, key: Caller) -> dict[str, Any]:
        """Add photos (every face of each; low-quality faces left out): they join existing clusters or make new ones."""
        path = state_path(request, key, name)
        service = _service(request)
        _, images = await read_request(request, NoFields, ("images",), many=True, max_images=service.config.max_images)
        photos = images["images"]
        labels = [f"photo-{hashlib.sha256(data).hexdigest()[:16]}" for data in photos]

        def run():
            with locked(path):
                collection = opened(path, must_exist=False)
                report = collection.add_photos(photos, labels=labels, pipeline=service.pipeline, thumbnails=True)
                collection.save()
                return {"added": report.to_dict()} | view(collection)

        return await service.pool.run(run)

    @app.get("/v1/clusters/{name}", tags=["clusters"])
    def show(request: Request, name: str, key: Caller) -> dict[str, Any]:
        """The clusters, largest first, with their face ids, names and whether they are confirmed."""
        path = state_path(request, key, name)
        with locked(path):
            return view(opened(path))

    @app.get("/v1/clusters/{name}/thumbnail", tags=["clusters"])
    def thumbnail(request: Request, name: str, key: Caller, face: str = Query(..., description="A face id")) -> Response:
        """A face's thumbnail (JPEG)."""
        path = state_path(request, key, name)
        with locked(path):
            record = opened(path).faces.get(face)
        if record is None or record.thumbnail is None:
            raise HTTPException(404, f"No face {face!r} in collection {name!r}")
        return Response(record.thumbnail, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})

    @app.post("/v1/clusters/{name}/merge", tags=["clusters"])
    def merge(request: Request, name: str, body: MergeBody, key: Caller) -> dict[str, Any]:
        """Merge clusters into the first one named."""
        return correct(request, key, name, lambda c: c.merge(body.clusters[0], *body.clusters[1:]))

    @app.post("/v1/clusters/{name}/split", tags=["clusters"])
    def split(request: Request, name: str, body: SplitBody, key: Caller) -> dict[str, Any]:
        """Move faces out of a cluster into a new one, or cut it in two."""
        return correct(request, key, name, lambda c: c.split(body.cluster, body.faces))

    @app.post("/v1/clusters/{name}/confirm", tags=["clusters"])
    def confirm(request: Request, name: str, body: ConfirmBody, key: Caller) -> dict[str, Any]:
        """Name a cluster: it is this person."""
        return correct(request, key, name, lambda c: c.confirm(body.cluster, body.name))

    @app.post("/v1/clusters/{name}/enrol", tags=["clusters"])
    def enrol(request: Request, name: str, body: EnrolBody, key: Caller) -> dict[str, Any]:
        """Enrol each confirmed cluster into a gallery as a person (faces already enrolled are not added twice)."""
        _allowed(key, body.gallery)
        gallery, _ = _service(request).galleries.get(body.gallery)
        path = state_path(request, key, name)
        with locked(path):
            return {"enrolled": opened(path).into_gallery(gallery)}
