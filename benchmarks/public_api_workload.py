"""A fixed workload through the public API only, to time two trees against each other (a refactor must not slow it):
embed 120 celeba300 photos with ``represent_batch``, enrol 40 people from one photo each, search 80 other photos.

    farm-bench -n 5 --vs "env PYTHONPATH=<old tree> python benchmarks/public_api_workload.py" -- \\
        env PYTHONPATH=<new tree> python benchmarks/public_api_workload.py

Prints the number of searches that returned a match: both trees must print the same.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import facesift
from facesift.gallery import open_gallery

FACES = Path(os.environ.get("FACESIFT_FACES_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "faces"))


def main() -> None:
    people = sorted(p for p in (FACES / "celeba300").iterdir() if p.is_dir())[:40]
    photos = [sorted(p.iterdir())[:3] for p in people]
    pipeline = facesift.get_pipeline()
    pipeline.represent_batch([f for ps in photos for f in ps])
    with tempfile.TemporaryDirectory() as folder, open_gallery(Path(folder) / "g.db", pipeline=pipeline) as gallery:
        for person, ps in zip(people, photos, strict=True):
            gallery.enroll(person.name, [ps[0]])
        matches = sum(gallery.search(f).decision == "match" for ps in photos for f in ps[1:])
    print(f"{matches} of {sum(len(ps) - 1 for ps in photos)} searches matched ({facesift.__file__})")


if __name__ == "__main__":
    main()
