"""Unlabelled photos grouped by person: cluster, correct (merge, split, confirm), enrol into a gallery.

    from facesift.cluster import Collection
    photos = Collection("clusters.json")
    photos.add_photos(paths)          # incremental: new faces join existing clusters
    photos.merge(3, 7); photos.confirm(3, "alice"); photos.save()
"""

from facesift.cluster.collection import AddReport, Cluster, ClusterError, Collection, FaceRecord
from facesift.cluster.core import METHODS, ClusterScores, cluster_vectors, cut_similarity, score_clusters

__all__ = ["METHODS", "AddReport", "Cluster", "ClusterError", "ClusterScores", "Collection", "FaceRecord",
           "cluster_vectors", "cut_similarity", "score_clusters"]
