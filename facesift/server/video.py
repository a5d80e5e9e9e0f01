"""Video over REST: upload a clip, get a job id at once, poll for the timeline.

A video takes seconds to minutes, longer than a request should wait, so each upload is probed (is it a
video, how long, 415/422/413 at once), written to a temporary file and queued for one dedicated worker
thread; the photo endpoints' pool is never held by a video. The queue is bounded (503 + Retry-After when
full), finished jobs are kept for the last ``KEEP_FINISHED`` only, and a job is visible to the key that
made it (and admin keys).
"""

# (no `from __future__ import annotations`: FastAPI reads the endpoint annotations, defined in a function)
import asyncio
import os
import queue
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from facesift.errors import EmptyVideoError, FacesiftError, NotAVideoError, TruncatedVideoError, VideoError, VideoTooLongError
from facesift.server.inputs import UnsupportedMediaError

#: finished jobs kept for polling; older ones are forgotten
KEEP_FINISHED = 32
#: how many clips may wait behind the one being analysed
QUEUE_SIZE = 4
#: the longest clip accepted, in seconds
MAX_SECONDS = 300.0
VIDEO_STATUS = ((NotAVideoError, 415), (VideoTooLongError, 413), (TruncatedVideoError, 422), (EmptyVideoError, 422), (VideoError, 422))


@dataclass
class VideoJob:
    job_id: str
    owner: str
    gallery: str | None
    stride: int
    path: str
    status: str = "queued"  # queued | running | done | failed
    created_at: float = field(default_factory=time.time)
    frames_done: int = 0
    frames_total: int = 0
    result: Any = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"job_id": self.job_id, "status": self.status, "gallery": self.gallery, "stride": self.stride,
               "created_at": self.created_at, "progress": {"frames": self.frames_done, "total": self.frames_total}}
        if self.result is not None:
            out["result"] = self.result.to_dict() | {"summary": self.result.summary()}
        if self.error is not None:
            out["error"] = self.error
        return out


class VideoJobs:
    """The queue and the one thread that works through it."""

    def __init__(self, service_getter, queue_size: int = QUEUE_SIZE) -> None:
        self._service = service_getter
        self._queue: queue.Queue[VideoJob] = queue.Queue(maxsize=queue_size)
        self._jobs: dict[str, VideoJob] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, job: VideoJob) -> None:
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            os.unlink(job.path)
            raise HTTPException(503, f"{self._queue.maxsize} videos are already waiting; retry in a minute",
                                headers={"Retry-After": "60"}) from None
        with self._lock:
            self._jobs[job.job_id] = job
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="facesift-video", daemon=True)
                self._thread.start()

    def get(self, job_id: str, key) -> VideoJob:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or not (key.admin or job.owner == key.key_id):
            raise HTTPException(404, f"No video job {job_id!r} (finished jobs are kept for the last {KEEP_FINISHED})")
        return job

    def _work(self) -> None:
        from facesift.video import analyze

        while True:
            job = self._queue.get()
            job.status = "running"
            try:
                service = self._service()
                gallery = service.galleries.get(job.gallery)[0] if job.gallery else None

                def progress(done: int, total: int, job: VideoJob = job) -> None:
                    job.frames_done, job.frames_total = done, total

                job.result = analyze(job.path, gallery=gallery, stride=job.stride, max_seconds=MAX_SECONDS,
                                     pipeline=service.pipeline, progress=progress)
                job.status = "done"
            except (FacesiftError, OSError, ValueError) as exc:
                job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
            finally:
                os.unlink(job.path)
                self._forget_old()

    def _forget_old(self) -> None:
        with self._lock:
            finished = sorted((j for j in self._jobs.values() if j.status in ("done", "failed")), key=lambda j: j.created_at)
            for job in finished[:-KEEP_FINISHED]:
                del self._jobs[job.job_id]


def add_video_endpoints(app: FastAPI) -> None:
    """POST /v1/video/jobs, GET /v1/video/jobs/{id}, GET /v1/video/jobs/{id}/tracks/{n}/thumbnail."""
    from facesift.server.app import Caller, _allowed, _service

    jobs = VideoJobs(lambda: app.state.service)

    @app.post("/v1/video/jobs", tags=["video"], status_code=202, openapi_extra={"requestBody": {"content": {"multipart/form-data": {
        "schema": {"type": "object", "required": ["video"], "properties": {
            "video": {"type": "string", "format": "binary"}, "gallery": {"type": "string"},
            "stride": {"type": "integer", "minimum": 1, "maximum": 30, "default": 3}}}}}}})
    async def submit(request: Request, key: Caller) -> dict[str, Any]:
        """Queue a clip (multipart field ``video``; optional ``gallery`` and ``stride``); poll the job id it returns."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "multipart/form-data":
            raise UnsupportedMediaError(f"Content type {kind or 'none'!r} is not accepted: send multipart/form-data with a 'video' file")
        form = await request.form(max_files=1, max_fields=4)
        upload = form.get("video")
        if not isinstance(upload, UploadFile):
            raise RequestValidationError(
                [{"loc": ("body", "video"), "msg": "a video file is required in field 'video'", "type": "value_error"}]
            )
        if upload.content_type and not upload.content_type.startswith(("video/", "application/octet-stream")):
            raise UnsupportedMediaError(f"Part 'video' is {upload.content_type!r}; send a video (video/*)")
        gallery = form.get("gallery") or None
        try:
            stride = int(form.get("stride") or 3)
        except ValueError:
            stride = 0
        if not 1 <= stride <= 30:
            raise RequestValidationError(
                [{"loc": ("body", "stride"), "msg": "stride must be a whole number from 1 to 30", "type": "value_error"}]
            )
        if gallery is not None:
            _allowed(key, gallery)
            _service(request).galleries.get(gallery)  # 404 now, not after the upload waited in the queue
        data = await upload.read()
        handle, path = tempfile.mkstemp(prefix="facesift-video-", suffix=os.path.splitext(upload.filename or "")[1][:8] or ".mp4")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        try:
            from facesift.video import probe

            info = await asyncio.to_thread(probe, path, max_seconds=MAX_SECONDS)
        except VideoError as exc:
            os.unlink(path)
            status = next(code for kind_, code in VIDEO_STATUS if isinstance(exc, kind_))
            raise HTTPException(status, str(exc)) from None
        job = VideoJob(uuid.uuid4().hex, key.key_id, gallery, stride, path, frames_total=info.frame_count)
        jobs.submit(job)
        return job.to_dict() | {"video": {"fps": info.fps, "frames": info.frame_count, "width": info.width,
                                          "height": info.height, "duration": info.duration}}

    @app.get("/v1/video/jobs/{job_id}", tags=["video"])
    def poll(job_id: str, key: Caller) -> dict[str, Any]:
        """The job's status and progress; once done, the timeline (tracks, who, when, boxes)."""
        return jobs.get(job_id, key).to_dict()

    @app.get("/v1/video/jobs/{job_id}/tracks/{track_id}/thumbnail", tags=["video"])
    def thumbnail(job_id: str, track_id: int, key: Caller) -> Response:
        """The best face of a track, as JPEG."""
        job = jobs.get(job_id, key)
        track = next((t for t in (job.result.tracks if job.result else ()) if t.track_id == track_id), None)
        if track is None or track.thumbnail is None:
            raise HTTPException(404, f"No thumbnail for track {track_id} of job {job_id!r}")
        return Response(track.thumbnail, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})
