"""Group face embeddings by person, and measure how well a grouping matches the truth.

The default method was chosen by measurement (``benchmarks/clustering.py``, docs/clustering.md):
agglomerative clustering with average linkage on cosine distance, cut where the average similarity between
two groups falls below the model card's calibrated threshold at a per-comparison false-match rate
(``DEFAULT_FALSE_MATCH_RATE``). The distance thus follows the model's calibration, not a number picked for
one embedding space. HDBSCAN and a fixed-distance DBSCAN (what photo apps ship) are here to be compared.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facesift.recognition import ModelCard
from facesift.results import Serialisable

METHODS = ("agglomerative", "hdbscan", "dbscan")
#: the operating point of the default cut (chosen on celeba300 folds 1-5, docs/clustering.md)
DEFAULT_FALSE_MATCH_RATE = 1e-2
#: the photo-app baseline: DBSCAN at a fixed cosine distance with a minimum group size (Immich's defaults)
DBSCAN_DISTANCE = 0.5
DBSCAN_MIN_FACES = 3


def cut_similarity(card: ModelCard, false_match_rate: float | None = None) -> float:
    """The cosine similarity where groups stop being merged: the card's threshold at ``false_match_rate``."""
    return card.threshold_for(DEFAULT_FALSE_MATCH_RATE if false_match_rate is None else false_match_rate)


def cluster_vectors(
    vectors: np.ndarray, *, method: str = "agglomerative", similarity: float, linkage: str = "average", min_cluster_size: int = 2
) -> np.ndarray:
    """A cluster label per row of L2-normalised ``vectors`` (0, 1, ...); -1 for a face HDBSCAN/DBSCAN call noise.

    ``similarity`` is the cut for agglomerative clustering (and the fixed distance 1 - similarity for DBSCAN).
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    if method not in METHODS:
        raise ValueError(f"Unknown clustering method {method!r}; choose one of {', '.join(METHODS)}")
    if len(vectors) == 0:
        return np.zeros(0, dtype=int)
    if len(vectors) == 1:
        return np.zeros(1, dtype=int)
    if method == "agglomerative":
        from sklearn.cluster import AgglomerativeClustering

        model = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage=linkage, distance_threshold=1.0 - similarity)
        return model.fit_predict(vectors).astype(int)
    if method == "hdbscan":
        from sklearn.cluster import HDBSCAN

        # on unit vectors Euclidean distance is a monotone function of cosine distance
        return HDBSCAN(min_cluster_size=max(2, min_cluster_size), metric="euclidean", copy=True).fit_predict(vectors).astype(int)
    from sklearn.cluster import DBSCAN

    return DBSCAN(eps=1.0 - similarity, min_samples=min_cluster_size, metric="cosine").fit_predict(vectors).astype(int)


def singletons(labels: np.ndarray) -> np.ndarray:
    """Labels with every noise face (-1) in a cluster of its own, as a user sees them."""
    labels = np.asarray(labels).copy()
    noise = labels < 0
    labels[noise] = labels.max(initial=-1) + 1 + np.arange(int(noise.sum()))
    return labels


@dataclass(frozen=True)
class ClusterScores(Serialisable):
    """How a grouping compares with the true identities (noise faces count as clusters of one)."""

    faces: int
    true_people: int
    clusters: int
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f: float
    noise: int


def _f(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def score_clusters(predicted: np.ndarray, truth: np.ndarray) -> ClusterScores:
    """Pairwise precision/recall (over pairs of faces put together) and BCubed (per face, averaged)."""
    noise = int((np.asarray(predicted) < 0).sum())
    predicted, truth = singletons(np.asarray(predicted)), np.asarray(truth)
    _, p_index = np.unique(predicted, return_inverse=True)
    _, t_index = np.unique(truth, return_inverse=True)
    table = np.zeros((p_index.max() + 1, t_index.max() + 1), dtype=np.int64)
    np.add.at(table, (p_index, t_index), 1)
    per_cluster, per_person = table.sum(1), table.sum(0)
    together = float((table * (table - 1)).sum() / 2)
    predicted_pairs = float((per_cluster * (per_cluster - 1)).sum() / 2)
    true_pairs = float((per_person * (per_person - 1)).sum() / 2)
    precision = together / predicted_pairs if predicted_pairs else 1.0
    recall = together / true_pairs if true_pairs else 1.0
    # BCubed: for each face, the share of its cluster that is its person, and of its person that is in its cluster
    cell = table[p_index, t_index].astype(np.float64)
    b_precision = float(np.mean(cell / per_cluster[p_index]))
    b_recall = float(np.mean(cell / per_person[t_index]))
    return ClusterScores(
        len(truth), int(len(per_person)), int(len(per_cluster)), precision, recall, _f(precision, recall),
        b_precision, b_recall, _f(b_precision, b_recall), noise,
    )
