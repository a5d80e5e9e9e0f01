"""``POST /v1/analyze``: age, gender, emotion and liveness per face (``facesift.analyze`` over HTTP)."""

from typing import Any

from fastapi import FastAPI, Request
from pydantic import Field

from facesift.analysis.analyzer import ACTIONS, DEFAULT_ACTIONS, analyze_detected, check_actions
from facesift.image import load_image
from facesift.pipeline import get_pipeline
from facesift.server.inputs import Params, openapi_body, read_request


class AnalyzeParams(Params):
    actions: str = Field(",".join(DEFAULT_ACTIONS), description=f"Comma-separated: {', '.join(ACTIONS)} (race: an audit aid)")
    policy: str = Field("all", pattern="^(all|largest|central)$", description="Which faces: all, largest or central")
    detector: str = Field("service", pattern="^(service|none)$",
                          description="service: the service's detector; none: the whole image is one face (a face crop)")


def add_analyze_endpoints(app: FastAPI, caller) -> None:
    """Register the endpoint; ``caller`` is the service's API-key dependency."""

    @app.post("/v1/analyze", tags=["faces"], openapi_extra=openapi_body(AnalyzeParams, ("image",)))
    async def analyze(request: Request, _: caller) -> dict[str, Any]:
        """Apparent age (with an interval), gender, emotion over 7 classes and a liveness decision at its
        calibrated operating point, per face; a face too small to analyse says so in its ``reasons``."""
        params, images = await read_request(request, AnalyzeParams, ("image",))
        actions = check_actions([a.strip() for a in params.actions.split(",") if a.strip()])
        service = request.app.state.service
        pipeline = service.pipeline if params.detector == "service" else get_pipeline(detector="none", embedder=service.pipeline.model)

        def run():
            pixels = load_image(images["image"][0], max_pixels=pipeline.max_pixels)
            return analyze_detected(pixels, pipeline.detect(pixels, policy=params.policy), actions)

        found = await service.pool.run(run)
        return {"faces": [item.to_dict() for item in found], **({} if found else {"reason": "no face found"})}
