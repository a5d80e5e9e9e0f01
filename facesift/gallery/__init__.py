"""Galleries of enrolled people: enrol, search, check a profile photo, find duplicates; embedded or on Milvus.

    from facesift.gallery import open_gallery
    with open_gallery("sqlite:///data/gallery.db") as gallery:
        gallery.enroll("alice", ["alice1.jpg", "alice2.jpg"])
        print(gallery.check("alice", "new_profile.jpg").outcome)
"""

from facesift.gallery.gallery import PERSON_ID_MAX, PERSON_ID_RULE, Gallery, pick_face, validate_person_id
from facesift.gallery.operating_point import AGGREGATIONS, DEFAULT_FPIR, OperatingPoint, operating_point, resolve_operating_point
from facesift.gallery.registry import open_gallery, register_backend
from facesift.gallery.results import (
    Candidate,
    CheckOutcome,
    CheckResult,
    DuplicatePair,
    EnrollOutcome,
    EnrollReport,
    EnrollResult,
    GalleryStats,
    ImportReport,
    Person,
    PhotoSearchResult,
    Sample,
    SampleInfo,
    SearchDecision,
    SearchResult,
)

__all__ = [
    "AGGREGATIONS",
    "DEFAULT_FPIR",
    "PERSON_ID_MAX",
    "PERSON_ID_RULE",
    "Candidate",
    "CheckOutcome",
    "CheckResult",
    "DuplicatePair",
    "EnrollOutcome",
    "EnrollReport",
    "EnrollResult",
    "Gallery",
    "GalleryStats",
    "ImportReport",
    "OperatingPoint",
    "Person",
    "PhotoSearchResult",
    "Sample",
    "SampleInfo",
    "SearchDecision",
    "SearchResult",
    "open_gallery",
    "operating_point",
    "pick_face",
    "register_backend",
    "resolve_operating_point",
    "validate_person_id",
]
