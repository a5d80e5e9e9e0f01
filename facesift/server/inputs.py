"""Request bodies: images as multipart uploads or base64 in JSON, other fields checked by a pydantic model.

Uploads stay in memory (the body size is capped before we get here), so no photo touches the disk
unless a gallery is set to keep images.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

M = TypeVar("M", bound=BaseModel)

#: the content types an uploaded image part may declare (browsers send image/*, scripts often octet-stream)
_IMAGE_PART_TYPES = ("image/", "application/octet-stream")


class Params(BaseModel):
    """Base of the non-image fields of a request: unknown fields are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class UnsupportedMediaError(Exception):
    """The request, or one of its parts, is not of a content type we accept (415)."""


async def read_request(
    request: Request, model: type[M], images: tuple[str, ...], *, many: bool = False, max_images: int = 20
) -> tuple[M, dict[str, list[bytes]]]:
    """The validated fields and the raw image bytes (one list per image field) of a request."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        fields, found = await _read_multipart(request, images, max_images)
    elif kind == "application/json":
        fields, found = await _read_json(request, images)
    else:
        raise UnsupportedMediaError(
            f"Content type {kind or 'none'!r} is not accepted: send multipart/form-data (image files) "
            "or application/json (images as base64 strings)"
        )
    for name in images:
        if not found.get(name):
            raise RequestValidationError([_error(name, f"an image is required in field {name!r}")])
        if not many and len(found[name]) > 1:
            raise RequestValidationError([_error(name, f"field {name!r} takes one image, got {len(found[name])}")])
        if len(found[name]) > max_images:
            raise RequestValidationError([_error(name, f"at most {max_images} images per request, got {len(found[name])}")])
    try:
        return model.model_validate(fields), found
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None


def _error(field: str, message: str) -> dict[str, Any]:
    return {"loc": ("body", field), "msg": message, "type": "value_error"}


async def _read_multipart(request: Request, images: tuple[str, ...], max_images: int):
    parser = MultiPartParser(request.headers, request.stream(), max_files=max_images + len(images), max_fields=50)
    # Starlette spools uploads over 1 MB to a temporary file; none is here (the body is capped before it gets
    # here). Set on this parser only: the class, and so every other Starlette app in the process, is left alone.
    parser.spool_max_size = sys.maxsize
    try:
        form = await parser.parse()
    except MultiPartException as exc:  # Starlette's words for a broken multipart body or too many parts
        raise RequestValidationError([_error("body", f"malformed multipart body: {exc.message}")]) from None
    fields: dict[str, Any] = {}
    found: dict[str, list[bytes]] = {}
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            if name not in images:
                raise RequestValidationError([_error(name, f"unexpected file field {name!r}; send {', '.join(images)}")])
            declared = (value.content_type or "application/octet-stream").lower()
            if not declared.startswith(_IMAGE_PART_TYPES):
                raise UnsupportedMediaError(f"Field {name!r} is {declared!r}; upload an image (image/jpeg, image/png ...)")
            found.setdefault(name, []).append(await value.read())
        elif name in images:
            raise RequestValidationError([_error(name, f"field {name!r} must be a file upload, not text")])
        else:
            fields[name] = value
    await form.close()
    return fields, found


async def _read_json(request: Request, images: tuple[str, ...]):
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestValidationError([_error("body", f"the body is not valid JSON ({exc})")]) from None
    if not isinstance(body, dict):
        raise RequestValidationError([_error("body", "the JSON body must be an object")])
    found: dict[str, list[bytes]] = {}
    for name in images:
        value = body.pop(name, None)
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        found[name] = [_decode_base64(name, item) for item in values]
    return body, found


def _decode_base64(name: str, value: Any) -> bytes:
    if not isinstance(value, str):
        raise RequestValidationError([_error(name, f"field {name!r} must be a base64 string (or a list of them)")])
    if value.startswith("data:"):  # a data URL, as browsers make them
        value = value.partition(",")[2]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise RequestValidationError([_error(name, f"field {name!r} is not valid base64")]) from None


def openapi_body(model: type[BaseModel], images: tuple[str, ...], *, many: bool = False) -> dict[str, Any]:
    """The request body of an endpoint for the OpenAPI schema: the same fields as multipart or JSON."""
    fields = model.model_json_schema()
    properties = fields.get("properties", {})
    image = {"type": "string", "format": "binary"}
    encoded = {"type": "string", "format": "byte", "description": "base64 image (a data: URL is fine)"}
    if many:
        image, encoded = {"type": "array", "items": image}, {"type": "array", "items": encoded}
    required = list(images) + fields.get("required", [])

    def schema(image_schema: dict) -> dict:
        return {"type": "object", "required": required,
                "properties": {**{name: image_schema for name in images}, **properties}}

    return {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": schema(image)},
        "application/json": {"schema": schema(encoded)},
    }}}
