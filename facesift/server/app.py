"""The FastAPI app: /v1 endpoints, health checks, the web page at / and the docs at /docs.

Every model call runs in the bounded worker pool (``workers.py``); models and galleries are opened
once per process, at start-up, and shared by all requests.
"""

from __future__ import annotations

import io
import logging
import re
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import fastapi_offline
import numpy as np
import PIL.Image
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from pydantic import Field
from starlette.exceptions import HTTPException

import facesift
from facesift.errors import (
    FacesiftError,
    GalleryClosedError,
    GalleryError,
    ImageError,
    ImageTooLargeError,
    InvalidArgumentError,
    InvalidPersonIdError,
    ModelError,
    NoFaceError,
    NotAnImageError,
    PersonExistsError,
    PersonNotFoundError,
    SampleNotFoundError,
    UnknownBackendError,
    UnsupportedImageError,
)
from facesift.gallery import PERSON_ID_RULE
from facesift.pipeline import Pipeline
from facesift.server.clusters import add_cluster_endpoints
from facesift.server.config import ServiceConfig
from facesift.server.galleries import Galleries, GalleryExistsError, GalleryNotFoundError
from facesift.server.inputs import Params, UnsupportedMediaError, openapi_body, read_request
from facesift.server.keys import GALLERY_NAME, ApiKey, KeyStore
from facesift.server.middleware import BodyTooLargeError, ServiceMiddleware
from facesift.server.video import add_video_endpoints
from facesift.server.workers import OverloadedError, WorkerPool
from facesift.verification import verify_images

log = logging.getLogger("facesift.server")
STATIC = Path(__file__).with_name("static")

#: typed errors -> HTTP status, most specific first
STATUS: tuple[tuple[type[Exception], int], ...] = (
    (ImageTooLargeError, 413),
    (NotAnImageError, 415),
    (UnsupportedImageError, 415),
    (ImageError, 422),
    (NoFaceError, 422),
    (InvalidPersonIdError, 422),
    (GalleryNotFoundError, 404),
    (GalleryClosedError, 404),  # deleted while the request ran
    (PersonNotFoundError, 404),
    (SampleNotFoundError, 404),
    (GalleryExistsError, 409),
    (PersonExistsError, 409),
    (UnknownBackendError, 422),
    (InvalidArgumentError, 422),
    (ModelError, 500),
    (GalleryError, 400),
)


def error_response(status: int, kind: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": kind, "detail": detail}, status_code=status, headers=headers)


@dataclass
class Service:
    """What the endpoints share: settings, the pipeline, keys, galleries and the worker pool."""

    config: ServiceConfig
    pipeline: Pipeline
    keys: KeyStore
    galleries: Galleries
    pool: WorkerPool
    ready: bool = False

    @classmethod
    def start(cls, config: ServiceConfig) -> Service:
        pipeline = Pipeline(config.detector, config.model, max_pixels=config.max_pixels, workers=config.workers,
                            decode_pixels=config.decode_pixels)
        blank = np.full((pipeline.embedder.input_size,) * 2 + (3,), 128, np.uint8)
        pipeline.detect(blank)  # load (and on first use check and repair) every model before serving
        pipeline.embedder.embed([blank])
        galleries = Galleries(config.galleries_dir, config.gallery_backend, pipeline)
        pool = WorkerPool(config.workers, config.queue_size, config.retry_after)
        return cls(config, pipeline, KeyStore(config.keys_path), galleries, pool, ready=True)

    def close(self) -> None:
        self.ready = False
        self.pool.close()
        self.galleries.close()
        self.pipeline.close()


# --- request parameters -----------------------------------------------------------------------------
class Operating(Params):
    threshold: float | None = Field(None, ge=-1, le=1, description="Cosine threshold (instead of a false-match rate)")
    false_match_rate: float | None = Field(None, gt=0, lt=1, description="Calibrated operating point, e.g. 0.001")


class FacePolicy(Params):
    policy: str = Field("all", pattern="^(all|auto|largest|central)$", description="Which faces: all, auto, largest or central")


class GalleryOperating(Operating):
    fpir: float | None = Field(None, gt=0, lt=1, description="False-positive identification rate for the gallery as it is "
                               "(default 0.01): the share of strangers' searches allowed to match anyone")


class CheckParams(GalleryOperating):
    require_live: bool = Field(False, description="A face the liveness check calls a presentation attack is spoof, never owner")


class SearchParams(GalleryOperating):
    k: int = Field(5, ge=1, le=100, description="How many people to return")
    faces: str = Field("one", pattern="^(one|all)$", description="one: the photo's face; all: every face, each with its box")


class EnrolParams(Params):
    strict: bool = Field(False, description="Also refuse photos closer to another person than to this one")
    require_live: bool = Field(False, description="Refuse a face the liveness check calls a presentation attack (outcome spoof)")
    create: bool = Field(True, description="Create the person when they do not exist yet")


class NewGallery(Params):
    name: str = Field(pattern=GALLERY_NAME.pattern, description="Lower-case letters, digits, - and _")
    keep_images: bool = Field(False, description="Store enrolled photos (needed to show them in search results)")


class NewPerson(Params):
    person_id: str = Field(description=PERSON_ID_RULE)  # checked by the gallery, with that message
    metadata: dict[str, Any] | None = None


# --- the app --------------------------------------------------------------------------------------------
def create_app(config: ServiceConfig | None = None) -> FastAPI:
    """The service as an ASGI app; models load when it starts (``uvicorn`` runs its lifespan)."""
    config = config or ServiceConfig()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.service = Service.start(config)
        routed = ", ".join(name for name, _ in app.state.service.pipeline.routed_models) or "none"
        log.info("facesift service ready: models %s + %s (small faces: %s), data in %s", config.detector, config.model, routed,
                 config.data_dir)
        yield
        app.state.service.close()

    app = FastAPI(
        title="facesift",
        version=facesift.__version__,
        description="Offline face detection, verification and identification. Send your API key in `X-API-Key`.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(ServiceMiddleware, max_body=config.max_upload_bytes, body_timeout=config.body_timeout,
                       log_person_ids=config.log_person_ids)
    _add_error_handlers(app)
    _add_pages(app)
    _add_endpoints(app, config)
    from facesift.server.openset import add_open_set_endpoints

    add_open_set_endpoints(app)
    add_video_endpoints(app)
    add_cluster_endpoints(app)
    from facesift.server.analyze import add_analyze_endpoints

    add_analyze_endpoints(app, Caller)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FacesiftError)
    async def facesift_error(_: Request, exc: FacesiftError) -> JSONResponse:
        status = next((code for kind, code in STATUS if isinstance(exc, kind)), 500)
        return error_response(status, type(exc).__name__, str(exc))

    @app.exception_handler(UnsupportedMediaError)
    async def unsupported_media(_: Request, exc: UnsupportedMediaError) -> JSONResponse:
        return error_response(415, "UnsupportedMediaType", str(exc))

    @app.exception_handler(BodyTooLargeError)
    async def too_large(_: Request, exc: BodyTooLargeError) -> JSONResponse:
        return error_response(413, "RequestTooLarge", str(exc))

    @app.exception_handler(OverloadedError)
    async def overloaded(_: Request, exc: OverloadedError) -> JSONResponse:
        return error_response(503, "Overloaded", str(exc), {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(part) for part in error['loc'] if part != 'body') or 'body'}: {error['msg']}"
            for error in exc.errors()
        ]
        return error_response(422, "InvalidRequest", "; ".join(problems))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 404 and _PERSON_WITH_SLASH.search(request.scope.get("raw_path", b"")):
            return error_response(422, "InvalidPersonIdError", f"A person id cannot contain /. {PERSON_ID_RULE}")
        kind = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "HTTPError")
        return error_response(exc.status_code, kind, str(exc.detail), getattr(exc, "headers", None))


def _add_pages(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # Swagger UI's files as fastapi-offline ships them (we serve them ourselves, under our own CSP)
    docs_assets = Path(fastapi_offline.__file__).with_name("static")
    app.mount("/docs-assets", StaticFiles(directory=docs_assets), name="docs-assets")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        """Swagger UI from local files (no CDN)."""
        return FileResponse(STATIC / "docs.html")

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz(request: Request) -> JSONResponse:
        """Readiness: models loaded, galleries listable, an active key; and how many requests are in the pool."""
        service: Service = request.app.state.service
        checks = {"models": service.ready}
        try:
            service.galleries.list()
            checks["galleries"] = True
        except (OSError, FacesiftError, ValueError):
            checks["galleries"] = False
        try:
            checks["keys"] = bool(service.keys.active())
        except FacesiftError:
            checks["keys"] = False
        ready = all(checks.values())
        load = {"admitted": service.pool.admitted, "capacity": service.pool.capacity}
        return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks, "load": load},
                            status_code=200 if ready else 503)


#: a path whose person id carried an encoded slash: the router split it and found no route
_PERSON_WITH_SLASH = re.compile(rb"/persons/[^/?]*%2f", re.IGNORECASE)
_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key from `facesift keys create`")


def _service(request: Request) -> Service:
    return request.app.state.service


async def _caller(request: Request, text: Annotated[str | None, Depends(_key_header)]) -> ApiKey:
    """The key the request carries; 401 when it is missing, unknown or revoked."""
    if not text:
        raise HTTPException(401, "Send an API key in the X-API-Key header", headers={"WWW-Authenticate": "ApiKey"})
    key = _service(request).keys.authenticate(text)
    if key is None:
        raise HTTPException(401, "The API key is wrong or revoked", headers={"WWW-Authenticate": "ApiKey"})
    request.scope.setdefault("state", {})["key_id"] = key.key_id
    return key


Caller = Annotated[ApiKey, Depends(_caller)]


async def _admin(key: Caller) -> ApiKey:
    if not key.admin:
        raise HTTPException(403, "This needs an admin key")
    return key


#: the largest page offset (SQLite's integers stop at 2**63 - 1; no gallery comes near this)
MAX_OFFSET = 10**12


def _without_paths(stats: dict[str, Any]) -> dict[str, Any]:
    """Gallery stats as clients see them: no file paths of the server (``uri``, the index's ``file``)."""
    stats.pop("uri", None)
    if isinstance(stats.get("index"), dict):
        stats["index"] = {k: v for k, v in stats["index"].items() if k != "file"}
    return stats


def _allowed(key: ApiKey, gallery: str) -> None:
    if not key.can_use(gallery):
        raise HTTPException(403, f"This key may not use gallery {gallery!r}")


def _add_endpoints(app: FastAPI, config: ServiceConfig) -> None:
    """Model calls go through the bounded pool; light gallery calls are plain ``def`` (FastAPI runs them
    in its thread pool), so neither blocks the event loop."""
    limit = config.max_images

    @app.get("/v1/me", tags=["keys"])
    async def me(key: Caller) -> dict[str, Any]:
        """The calling key: its id, name and rights (the web page signs in with it)."""
        return key.to_dict()

    @app.post("/v1/detect", tags=["faces"], openapi_extra=openapi_body(FacePolicy, ("image",)))
    async def detect(request: Request, _: Caller) -> dict[str, Any]:
        """Faces in an image: boxes, landmarks, detector scores and quality."""
        params, images = await read_request(request, FacePolicy, ("image",))
        service = _service(request)
        found = await service.pool.run(lambda: service.pipeline.detect(images["image"][0], policy=params.policy))
        return {"faces": [item.to_dict() for item in found]}

    @app.post("/v1/represent", tags=["faces"], openapi_extra=openapi_body(FacePolicy, ("image",)))
    async def represent(request: Request, _: Caller) -> dict[str, Any]:
        """Embeddings of the faces in an image (L2-normalised), with their boxes and quality."""
        params, images = await read_request(request, FacePolicy, ("image",))
        service = _service(request)
        found = await service.pool.run(lambda: service.pipeline.represent(images["image"][0], policy=params.policy))
        return {"faces": [item.to_dict(include=("embedding",)) for item in found]}

    @app.post("/v1/verify", tags=["faces"], openapi_extra=openapi_body(Operating, ("image_a", "image_b")))
    async def verify(request: Request, _: Caller) -> dict[str, Any]:
        """Are the (largest) faces of two images the same person? 422 when either has no face."""
        params, images = await read_request(request, Operating, ("image_a", "image_b"))
        service = _service(request)

        def run():
            return verify_images(service.pipeline, images["image_a"][0], images["image_b"][0],
                                 threshold=params.threshold, false_match_rate=params.false_match_rate)

        return (await service.pool.run(run)).to_dict()

    # --- galleries ---------------------------------------------------------------------------------------
    @app.get("/v1/galleries", tags=["galleries"])
    def list_galleries(request: Request, key: Caller) -> dict[str, Any]:
        """The galleries this key may use."""
        return {"galleries": [g.to_dict() for g in _service(request).galleries.list() if key.can_use(g.name)]}

    @app.post("/v1/galleries", tags=["galleries"], status_code=201)
    def create_gallery(request: Request, body: NewGallery, _: Annotated[ApiKey, Depends(_admin)]) -> dict[str, Any]:
        """Create a gallery (admin keys only); ``keep_images`` decides whether enrolled photos are stored."""
        return _service(request).galleries.create(body.name, keep_images=body.keep_images).to_dict()

    @app.get("/v1/galleries/{gallery}", tags=["galleries"])
    def gallery_stats(request: Request, gallery: str, key: Caller) -> dict[str, Any]:
        """Settings and counts of a gallery."""
        _allowed(key, gallery)
        opened, info = _service(request).galleries.get(gallery)
        return info.to_dict() | {"stats": _without_paths(opened.stats().to_dict())}

    @app.delete("/v1/galleries/{gallery}", tags=["galleries"], status_code=204)
    def delete_gallery(request: Request, gallery: str, _: Annotated[ApiKey, Depends(_admin)]) -> Response:
        """Delete a gallery and everything in it (admin keys only)."""
        _service(request).galleries.delete(gallery)
        return Response(status_code=204)

    # --- persons and samples -----------------------------------------------------------------------------
    @app.get("/v1/galleries/{gallery}/persons", tags=["persons"])
    def list_persons(
        request: Request, gallery: str, key: Caller,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        search: Annotated[str, Query(max_length=256, description="Only ids containing this (any case)")] = "",
    ) -> dict[str, Any]:
        """Enrolled people, oldest first, a page at a time."""
        _allowed(key, gallery)
        opened, _ = _service(request).galleries.get(gallery)
        return {"persons": [p.to_dict() for p in opened.list_persons(offset=offset, limit=limit, contains=search)]}

    @app.post("/v1/galleries/{gallery}/persons", tags=["persons"], status_code=201)
    def add_person(request: Request, gallery: str, body: NewPerson, key: Caller) -> dict[str, Any]:
        """Add a person without photos (409 when the id is taken)."""
        _allowed(key, gallery)
        opened, _ = _service(request).galleries.get(gallery)
        return opened.add_person(body.person_id, body.metadata).to_dict()

    @app.get("/v1/galleries/{gallery}/persons/{person_id}", tags=["persons"])
    def get_person(request: Request, gallery: str, person_id: str, key: Caller) -> dict[str, Any]:
        _allowed(key, gallery)
        opened, _ = _service(request).galleries.get(gallery)
        return opened.get_person(person_id).to_dict()

    @app.get("/v1/galleries/{gallery}/persons/{person_id}/samples", tags=["samples"])
    def person_samples(request: Request, gallery: str, person_id: str, key: Caller) -> dict[str, Any]:
        """A person's samples, oldest first: ids, qualities, dates and whether the photo is kept."""
        _allowed(key, gallery)
        opened, _ = _service(request).galleries.get(gallery)
        return {"person_id": person_id, "samples": [s.to_dict() for s in opened.samples_of(person_id)]}

    @app.delete("/v1/galleries/{gallery}/persons/{person_id}", tags=["persons"])
    def delete_person(request: Request, gallery: str, person_id: str, key: Caller) -> dict[str, Any]:
        """Remove a person and all their samples."""
        _allowed(key, gallery)
        opened, _ = _service(request).galleries.get(gallery)
        return {"person_id": person_id, "samples_removed": opened.remove(person_id)}

    @app.post("/v1/galleries/{gallery}/persons/{person_id}/samples", tags=["samples"],
              openapi_extra=openapi_body(EnrolParams, ("images",), many=True))
    async def enrol(request: Request, gallery: str, person_id: str, key: Caller) -> dict[str, Any]:
        """Enrol photos of a person; each photo is judged on its own (added, no face, low quality, duplicate...)."""
        _allowed(key, gallery)
        service = _service(request)
        opened, info = service.galleries.get(gallery)
        params, images = await read_request(request, EnrolParams, ("images",), many=True, max_images=limit)

        def run():
            return opened.enroll(person_id, images["images"], strict=params.strict, create=params.create,
                                 keep_images=info.keep_images, sources=[f"upload {i}" for i in range(len(images["images"]))],
                                 require_live=params.require_live)

        report = await service.pool.run(run)
        return report.to_dict()

    @app.delete("/v1/galleries/{gallery}/samples/{sample_id}", tags=["samples"], status_code=204)
    def delete_sample(request: Request, gallery: str, sample_id: str, key: Caller) -> Response:
        _allowed(key, gallery)
        opened, _ = _service(request).galleries.get(gallery)
        opened.remove_sample(sample_id)
        return Response(status_code=204)

    @app.get("/v1/galleries/{gallery}/samples/{sample_id}/image", tags=["samples"])
    def sample_image(request: Request, gallery: str, sample_id: str, key: Caller) -> Response:
        """The enrolled photo of a sample, when the gallery keeps images (404 otherwise)."""
        _allowed(key, gallery)
        opened, _ = _service(request).galleries.get(gallery)
        data = opened.sample_image(sample_id)
        if data is None:
            raise HTTPException(404, f"Sample {sample_id!r} has no stored image (the gallery does not keep images)")
        kind = PIL.Image.open(io.BytesIO(data)).get_format_mimetype() or "application/octet-stream"
        return Response(data, media_type=kind, headers={"Cache-Control": "private, no-store"})

    # --- identification ------------------------------------------------------------------------------------
    @app.post("/v1/galleries/{gallery}/search", tags=["search"], openapi_extra=openapi_body(SearchParams, ("image",)))
    async def search(request: Request, gallery: str, key: Caller) -> dict[str, Any]:
        """Who is the (largest) face in the image, or with faces=all every face? Up to k people, best first, and
        match/unknown/no_face, at the operating point stated in the answer (FPIR, gallery size, threshold)."""
        _allowed(key, gallery)
        service = _service(request)
        opened, _ = service.galleries.get(gallery)
        params, images = await read_request(request, SearchParams, ("image",))

        def run():
            verb = opened.search_faces if params.faces == "all" else opened.search
            return verb(images["image"][0], k=params.k, fpir=params.fpir, threshold=params.threshold,
                        false_match_rate=params.false_match_rate)

        return (await service.pool.run(run)).to_dict()

    @app.post("/v1/galleries/{gallery}/persons/{person_id}/check", tags=["search"],
              openapi_extra=openapi_body(CheckParams, ("image",)))
    async def check(request: Request, gallery: str, person_id: str, key: Caller) -> dict[str, Any]:
        """The profile-photo check: is this photo the person, someone else enrolled, nobody known, or unusable?"""
        _allowed(key, gallery)
        service = _service(request)
        opened, _ = service.galleries.get(gallery)
        params, images = await read_request(request, CheckParams, ("image",))

        def run():
            return opened.check(person_id, images["image"][0], fpir=params.fpir, threshold=params.threshold,
                                false_match_rate=params.false_match_rate, require_live=params.require_live)

        return (await service.pool.run(run)).to_dict()

