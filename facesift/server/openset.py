"""REST endpoints of open-set identification beyond search and check: the gallery's operating point now, and
duplicate people, both at an FPIR for the gallery as it is (``facesift.gallery.operating_point``)."""

from typing import Any

from fastapi import FastAPI, Query, Request

from facesift.server.app import Caller, _allowed, _service  # app.py includes this module from create_app(), once loaded


def add_open_set_endpoints(app: FastAPI) -> None:
    """The endpoints below, on ``app`` (no ``from __future__ import annotations`` here: FastAPI reads these signatures)."""
    @app.get("/v1/galleries/{gallery}/operating-point", tags=["search"])
    def operating_point(
        request: Request,
        gallery: str,
        key: Caller,
        fpir: float | None = Query(None, gt=0, lt=1),
        false_match_rate: float | None = Query(None, gt=0, lt=1),
        threshold: float | None = Query(None, ge=-1, le=1),
    ) -> dict[str, Any]:
        """The operating point a search would use now: FPIR, gallery size (people, samples), aggregation and threshold
        (give at most one of fpir, false_match_rate, threshold; none: the default FPIR 0.01)."""
        _allowed(key, gallery)
        opened, _ = _service(request).galleries.get(gallery)
        return opened.operating_point(fpir=fpir, false_match_rate=false_match_rate, threshold=threshold).to_dict()

    @app.get("/v1/galleries/{gallery}/duplicates", tags=["search"])
    def duplicates(
        request: Request,
        gallery: str,
        key: Caller,
        fpir: float | None = Query(None, gt=0, lt=1),
        false_match_rate: float | None = Query(None, gt=0, lt=1),
        threshold: float | None = Query(None, ge=-1, le=1),
    ) -> dict[str, Any]:
        """Pairs of people who are probably the same human, best first, and the operating point they were found at."""
        _allowed(key, gallery)
        opened, _ = _service(request).galleries.get(gallery)
        pairs = opened.duplicates(fpir=fpir, false_match_rate=false_match_rate, threshold=threshold)
        point = opened.operating_point(
            fpir=fpir, false_match_rate=false_match_rate, threshold=threshold, people=max(opened.stats().persons - 1, 1)
        )
        return {
            "pairs": [{k: v for k, v in p.to_dict().items() if k != "operating_point"} for p in pairs],
            "operating_point": point.to_dict(),
        }
