"""Galleries of enrolled people: enrol, search, check a profile photo, find duplicates; embedded or on Milvus.

    from facesift.gallery import open_gallery
    with open_gallery("sqlite:///data/gallery.db") as gallery:
        gallery.enroll("alice", ["alice1.jpg", "alice2.jpg"])
        print(gallery.check("alice", "new_profile.jpg").outcome)
"""

from facesift.gallery.base import (
    AGGREGATIONS,
    PERSON_ID_MAX,
    PERSON_ID_RULE,
    Candidate,
    CheckOutcome,
    CheckResult,
    DuplicatePair,
    EnrollOutcome,
    EnrollReport,
    EnrollResult,
    Gallery,
    GalleryStats,
    ImportReport,
    Person,
    Sample,
    SampleInfo,
    SearchResult,
    open_gallery,
    pick_face,
    register_backend,
    validate_person_id,
)

__all__ = [
    "AGGREGATIONS",
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
    "Person",
    "Sample",
    "SampleInfo",
    "SearchResult",
    "open_gallery",
    "pick_face",
    "register_backend",
    "validate_person_id",
]
