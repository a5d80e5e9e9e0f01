"""What ``to_dict()`` writes is declared on the fields: on-request fields only when named, unserialised ones never."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from facesift.results import Serialisable, on_request, to_plain, unserialised


def test_an_embedding_is_written_only_when_asked_for_and_after_the_other_fields(pipeline, obama):
    (found,) = pipeline.represent(obama, policy="largest")
    plain = found.to_dict()
    assert list(plain) == ["face", "quality", "model", "embedded_by"]
    with_vector = found.to_dict(include=("embedding",))
    assert list(with_vector) == [*plain, "embedding"]
    assert with_vector["embedding"] == found.embedding.tolist() and len(with_vector["embedding"]) == 128
    json.dumps(with_vector)  # plain values all the way down
    (image,) = pipeline.represent_batch([obama], policy="largest")
    assert "embedding" not in image.to_dict()["faces"][0]
    assert image.to_dict(include=("embedding",))["faces"][0]["embedding"] == with_vector["embedding"]  # at any depth


@dataclass(frozen=True)
class _Report(Serialisable):
    name: str
    scores: np.ndarray = unserialised(compare=False)
    secret: str = on_request(default="s")
    mean: np.float32 = np.float32(0.5)


def test_unserialised_fields_are_never_written_and_hidden_from_repr():
    report = _Report("r", np.arange(3))
    assert report.to_dict() == {"name": "r", "mean": 0.5}
    assert report.to_dict(include=("scores", "secret")) == {"name": "r", "mean": 0.5, "secret": "s"}
    assert type(to_plain(report)["mean"]) is float
    assert "scores" not in repr(report) and "secret" not in repr(report)
