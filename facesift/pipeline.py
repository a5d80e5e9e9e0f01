"""image -> faces -> aligned crops -> quality -> embeddings, batched, with models loaded once per process.

Small faces: when cross-resolution models trained for this embedder are installed (``facesift train
crossres``), a face whose eyes are closer than a model's card's ``eye_distance_below`` is embedded by the
model with the smallest such limit instead (their vectors live in the same space). "Closer" uses the
effective eye distance (resolution.py), so a small face that was upscaled, blurred to the same detail, counts
as small too; ``low_resolution=False`` turns that off (``FACESIFT_LOW_RESOLUTION=0`` for a whole process). ``restorer=`` adds optional
super-resolution of faces whose eyes are closer than ``restore_below`` px before they are embedded.

Decoding, detection and alignment of many images run in a small thread pool (OpenCV, Pillow and
onnxruntime release the GIL) while crops are embedded in batches, so the cores stay busy.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Literal, Self, Sequence

import numpy as np

from facesift.detection import Detector, create_detector
from facesift.errors import ClosedError, FacesiftError, InvalidArgumentError, NoFaceError
from facesift.image import DEFAULT_MAX_PIXELS, ImageInput, decode_image
from facesift.quality import DEFAULT_POLICY, QualityPolicy, assess
from facesift.recognition import Embedder, create_embedder
from facesift.recognition.trained import installed_low_resolution, low_resolution_embedders, routing_by_default
from facesift.resolution import effective_eye_distance
from facesift.restoration import create_restorer
from facesift.results import DetectedFace, Face, FaceEmbedding, ImageFaces

FacePolicy = Literal["auto", "largest", "central", "all"]
FACE_POLICIES: tuple[str, ...] = ("auto", "largest", "central", "all")
#: The face to use from a photo with several: ``auto`` scores size, centrality and detector confidence together,
#: so a profile photo gives its (biggest) owner and a press photo its subject in the middle (docs/face-choice.md).
DEFAULT_FACE_POLICY = "auto"
#: maps an aligned (H, W, 3) uint8 RGB crop to the crop the pipeline goes on with (a degradation, a restoration)
CropTransform = Callable[[np.ndarray], np.ndarray]

@dataclass
class _Analysed:
    """One image after detection and alignment, before embedding."""

    image_size: tuple[int, int]
    detected: list[DetectedFace]
    crops: list[np.ndarray]
    #: per face, the index of the cross-resolution model that embeds it, or -1 for the main embedder
    route: list[int]


def check_face_policy(policy: str) -> None:
    if policy not in FACE_POLICIES:
        raise InvalidArgumentError(f"Unknown face policy {policy!r}; choose one of {', '.join(FACE_POLICIES)}")


def choice_scores(faces: Sequence[Face], image_size: tuple[int, int]) -> np.ndarray:
    """How much each face looks like the one a photo is about, in [0, 1] (the ``auto`` policy's score).

    Size relative to the largest face (side length), times how central it is (1 at the image centre, 0 at a
    corner), times the detector's confidence: a bystander must be more than twice the subject's size to win
    from the edge of a press photo, and a profile photo's owner is both the biggest and near the middle.
    """
    if not faces:
        return np.zeros(0)
    width, height = image_size
    half_diagonal = float(np.hypot(width, height)) / 2 or 1.0
    sides = np.sqrt([face.area for face in faces])
    size = sides / (sides.max() or 1.0)
    offset = np.array([np.hypot(f.center[0] - width / 2, f.center[1] - height / 2) for f in faces]) / half_diagonal
    centrality = np.clip(1.0 - offset, 0.0, 1.0)
    confidence = np.clip([face.score for face in faces], 0.0, 1.0)
    return size * centrality * confidence


def select_faces(faces: Sequence[Face], policy: str, image_size: tuple[int, int]) -> list[Face]:
    """Which faces of a photo to use: the ``auto`` choice (:func:`choice_scores`), the largest, the one nearest the
    centre, or all of them."""
    check_face_policy(policy)
    if policy == "all" or not faces:
        return list(faces)
    if policy == "largest":
        return [max(faces, key=lambda f: f.area)]
    if policy == "auto":
        return [faces[int(np.argmax(choice_scores(faces, image_size)))]]
    width, height = image_size
    diagonal = float(np.hypot(width, height)) or 1.0

    def off_centre(face: Face) -> float:
        cx, cy = face.center
        return float(np.hypot(cx - width / 2, cy - height / 2)) / diagonal - 1e-6 * face.area

    return [min(faces, key=off_centre)]


class Pipeline:
    """A detector and an embedder, loaded once, shared safely between threads.

    Each is given by name (with its options), or built and handed in: ``Pipeline(create_detector("yunet",
    score_threshold=0.8), my_embedder)``; a piece handed in stays its owner's, to close after the pipeline is done.
    A context manager: ``close()`` stops its threads and closes the embedders it built itself; that also happens
    once nothing refers to the pipeline any more.
    """

    def __init__(
        self,
        detector: str | Detector = "yunet",
        embedder: str | Embedder = "sface",
        *,
        detector_options: dict | None = None,
        embedder_options: dict | None = None,
        quality_policy: QualityPolicy = DEFAULT_POLICY,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        workers: int | None = None,
        low_resolution: bool | None = None,
        restorer: str | None = None,
        restore_below: float = 12.0,
        decode_pixels: int | None = None,
    ) -> None:
        self.detector = _built(detector, detector_options, Detector, create_detector, "detector")
        self.embedder = _built(embedder, embedder_options, Embedder, create_embedder, "embedder")
        if low_resolution is None:
            low_resolution = routing_by_default()
        self.low_resolution_embedders = low_resolution_embedders(self.embedder.name) if low_resolution else ()
        owned = ((self.embedder,) if isinstance(embedder, str) else ()) + self.low_resolution_embedders  # built here: closed here
        self.restorer = create_restorer(restorer) if restorer else None
        self.restore_below = restore_below
        self.quality_policy = quality_policy
        self.max_pixels = max_pixels
        #: a JPEG over this many pixels is decoded reduced (``load_image(reduce_to=)``); boxes stay in its pixels
        self.decode_pixels = decode_pixels
        self.workers = workers or max(2, min(4, os.cpu_count() or 1))
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="facesift")
        self._closed = False
        # also run once nothing refers to the pipeline any more (a shared one that get_pipeline() replaced)
        self._release = weakref.finalize(self, _release, self._pool, owned)

    @property
    def model(self) -> str:
        return self.embedder.name

    @property
    def routed_models(self) -> tuple[tuple[str, str], ...]:
        """(name, fingerprint) of each cross-resolution model this pipeline loaded, smallest limit first."""
        return tuple((model.name, model.fingerprint) for model in self.low_resolution_embedders)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Finish the work in flight, stop the threads and close the embedders this pipeline built (those handed
        in built stay open: they are their owner's to close). Using the pipeline afterwards raises
        :class:`ClosedError`."""
        self._closed = True
        self._pool.shutdown(wait=True)
        self._release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- single images -------------------------------------------------------------------------------
    def detect(self, image: ImageInput, *, policy: str = "all") -> list[DetectedFace]:
        """Faces in one image with their quality, best detection first."""
        return self._analyse(image, policy).detected

    def represent(
        self, image: ImageInput, *, policy: str = "all", crop_transform: CropTransform | None = None
    ) -> list[FaceEmbedding]:
        """Embeddings of the faces in one image (``policy`` picks which faces; ``crop_transform``: see
        :meth:`represent_batch`)."""
        analysed = self._analyse(image, policy, crop_transform)
        return self._embed(analysed)

    def represent_faces(self, pixels: np.ndarray, faces: Sequence[Face]) -> list[FaceEmbedding]:
        """Embeddings of faces already found in an RGB image, such as the faces of a video frame that a
        tracker still needs to look at (the others are never aligned or embedded)."""
        return self._embed(self._prepare(pixels, list(faces)))

    def assess_faces(self, pixels: np.ndarray, faces: Sequence[Face]) -> list[DetectedFace]:
        """The quality of faces already found in an RGB image, without embedding them (alignment is cheap,
        embedding is not: a tracker embeds only the faces worth it)."""
        return self._prepare(pixels, list(faces)).detected

    # --- many images ---------------------------------------------------------------------------------
    def represent_batch(
        self,
        images: Iterable[ImageInput],
        *,
        start: int = 0,
        policy: str = DEFAULT_FACE_POLICY,
        on_error: Literal["raise", "record"] = "record",
        progress: Callable[[int], None] | None = None,
        crop_transform: CropTransform | None = None,
    ) -> list[ImageFaces]:
        """Embeddings for many images, in input order, numbered from ``start`` (one list fed in chunks keeps one numbering).

        With ``on_error="record"`` an image that fails (unreadable, too large...) gets an ``ImageFaces``
        with ``error`` set and the batch goes on; with ``"raise"`` the first failure is raised.
        ``crop_transform`` maps each aligned crop to the one that is assessed, routed and embedded (an evaluation's
        degradation or restoration, ``facesift.evaluation.CropDegradation``); per call, so a pipeline shared
        between threads serves it without a copy.
        """
        self._check_open()
        check_face_policy(policy)  # before any work
        results: list[ImageFaces] = []
        pending_crops: list[np.ndarray] = []
        pending: list[tuple[int, str, _Analysed]] = []
        window: deque[tuple[int, str, Future]] = deque()
        window_size = 4 * self.workers
        iterator = enumerate(images, start)

        def flush() -> None:
            vectors, by = self._embed_crops(pending_crops, [r for _, _, a in pending for r in a.route])
            offset = 0
            for index, source, analysed in pending:
                count = len(analysed.crops)
                faces = self._face_embeddings(analysed, vectors[offset : offset + count], by[offset : offset + count])
                results.append(ImageFaces(index, source, faces, analysed.image_size))
                offset += count
            pending.clear()
            pending_crops.clear()

        def submit_next() -> bool:
            try:
                index, image = next(iterator)
            except StopIteration:
                return False
            window.append((index, _describe(image, index), self._pool.submit(self._analyse, image, policy, crop_transform)))
            return True

        while len(window) < window_size and submit_next():
            pass
        while window:
            index, source, future = window.popleft()
            submit_next()
            try:
                analysed = future.result()
            except (FacesiftError, OSError, ValueError) as exc:
                if on_error == "raise":
                    raise
                results.append(ImageFaces(index, source, (), None, str(exc), type(exc).__name__))
            else:
                pending.append((index, source, analysed))
                pending_crops.extend(analysed.crops)
                if len(pending_crops) >= self.embedder.max_batch:
                    flush()
            if progress is not None:
                progress(1)
        flush()
        results.sort(key=lambda item: item.index)
        return results

    # --- internals -----------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("This pipeline was closed; create a new one (or use facesift.get_pipeline())")

    def _analyse(self, image: ImageInput, policy: str, crop_transform: CropTransform | None = None) -> _Analysed:
        self._check_open()
        pixels, scale = decode_image(image, max_pixels=self.max_pixels, reduce_to=self.decode_pixels)
        height, width = pixels.shape[:2]
        return self._prepare(pixels, select_faces(self.detector.detect(pixels), policy, (width, height)), scale, crop_transform)

    def _prepare(
        self, pixels: np.ndarray, faces: list[Face], scale: float = 1.0, crop_transform: CropTransform | None = None
    ) -> _Analysed:
        """Align (then ``crop_transform``), assess, optionally restore and route the chosen faces of one image
        (``scale``: how much smaller than the source it was decoded, so the faces are reported in its pixels)."""
        self._check_open()
        height, width = pixels.shape[:2]
        crops = aligned = [self.embedder.align(pixels, face) for face in faces]
        if crop_transform is not None:
            crops = aligned = [crop_transform(crop) for crop in crops]
        detected = [
            DetectedFace(face, assess(face, self.embedder.quality_crop(crop), self.quality_policy))
            for face, crop in zip(faces, crops, strict=True)
        ]
        if self.restorer is not None:
            crops = [
                self.restorer.restore_face(pixels, face, self.embedder.input_size) if face.eye_distance < self.restore_below else crop
                for face, crop in zip(faces, crops, strict=True)
            ]
        route = [self._route(item.face, crop) for item, crop in zip(detected, aligned, strict=True)]
        if scale != 1.0:  # decoded reduced: report the faces in the source image's pixels
            detected = [DetectedFace(item.face.scaled(1 / scale), item.quality) for item in detected]
            width, height = round(width / scale), round(height / scale)
        return _Analysed((width, height), detected, crops, route)

    def _route(self, face: Face, crop: np.ndarray) -> int:
        """Which cross-resolution model embeds this face (index, smallest limit first), or -1: the main embedder."""
        if not self.low_resolution_embedders:
            return -1
        distance = effective_eye_distance(face, crop)
        return next((k for k, model in enumerate(self.low_resolution_embedders) if distance < model.card.eye_distance_below), -1)

    def _embed_crops(self, crops: list[np.ndarray], route: list[int]) -> tuple[np.ndarray, list[str | None]]:
        """Vectors for crops, small faces through their cross-resolution model; and which model did each."""
        vectors = np.zeros((len(crops), self.embedder.dims), dtype=np.float32)
        routes = np.asarray(route, dtype=int)
        for k, embedder in [*enumerate(self.low_resolution_embedders), (-1, self.embedder)]:
            chosen = routes == k
            if chosen.any():
                vectors[chosen] = embedder.embed([crop for crop, take in zip(crops, chosen, strict=True) if take])
        by = [self.low_resolution_embedders[k].name if k >= 0 else None for k in route]
        return vectors, by

    def _embed(self, analysed: _Analysed) -> list[FaceEmbedding]:
        return list(self._face_embeddings(analysed, *self._embed_crops(analysed.crops, analysed.route)))

    def _face_embeddings(
        self, analysed: _Analysed, vectors: np.ndarray, by: list[str | None]
    ) -> tuple[FaceEmbedding, ...]:
        """Pair each detected face with its vector and the model that made it."""
        return tuple(
            FaceEmbedding(item.face, item.quality, vector, self.model, name)
            for item, vector, name in zip(analysed.detected, vectors, by, strict=True)
        )

    def one_face(self, image: ImageInput, *, policy: str = DEFAULT_FACE_POLICY, label: str = "image") -> FaceEmbedding:
        """The single face to use from ``image``, or :class:`NoFaceError` naming ``label``."""
        if policy == "all":
            raise ValueError("one_face needs a policy that picks one face: auto, largest or central")
        faces = self.represent(image, policy=policy)
        if not faces:
            raise NoFaceError(f"No face was found in {label}")
        return faces[0]


def _built(piece, options: dict | None, contract: type, create: Callable, kind: str):
    """A detector or embedder: built from its name, or the one handed in (which takes no options)."""
    if isinstance(piece, str):
        return create(piece, **(options or {}))
    if not isinstance(piece, contract):
        raise InvalidArgumentError(f"Pass a {kind} name or a built {contract.__name__}, not {type(piece).__name__}")
    if options:
        raise InvalidArgumentError(f"{kind}_options go with a {kind} name; this {kind} is already built")
    return piece


def _release(pool: ThreadPoolExecutor, owned: tuple[Embedder, ...]) -> None:
    """Stop a pipeline's threads (without waiting: this may run on one of them) and close its own embedders."""
    pool.shutdown(wait=False)
    for embedder in owned:
        embedder.close()


def _describe(image: ImageInput, index: int) -> str:
    if isinstance(image, (str, os.PathLike)):
        return str(image)
    return f"<input {index}>"


_PIPELINES: dict[tuple[str, str, bool], Pipeline] = {}
_PIPELINES_LOCK = threading.Lock()


def get_pipeline(detector: str = "yunet", embedder: str = "sface", *, low_resolution: bool | None = None) -> Pipeline:
    """The process-wide shared pipeline for this detector and embedder, created on first use and again when the
    cross-resolution models installed for it change (``facesift train`` in the same process, say), so that no
    caller embeds with models that are no longer the installed ones. A replaced pipeline is closed once no caller
    holds it any more (a thread still using it, like a server's request, keeps it open)."""
    if low_resolution is None:
        low_resolution = routing_by_default()
    key = (detector, embedder, low_resolution)
    installed = installed_low_resolution(embedder, routing=low_resolution)
    with _PIPELINES_LOCK:
        pipeline = _PIPELINES.get(key)
        if pipeline is None or pipeline.routed_models != installed:
            pipeline = _PIPELINES[key] = Pipeline(detector, embedder, low_resolution=low_resolution)
        return pipeline
