"""Clustering real photos with the names hidden: the five Johns (a hard different-person set) and a gallery."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from facesift.cli import app
from facesift.cluster import ClusterError, Collection, cluster_vectors, score_clusters
from facesift.gallery import open_gallery

runner = CliRunner()


@pytest.fixture(scope="module")
def johns(faces):
    """(photo, person) for the 55 photos of five different men named John."""
    return [(photo, person.name) for person in sorted((faces / "johns").iterdir()) for photo in sorted(person.iterdir())]


def test_scores_are_the_textbook_ones():
    truth = np.array([0, 0, 0, 1, 1])
    perfect = score_clusters(np.array([5, 5, 5, 2, 2]), truth)
    assert perfect.bcubed_f == 1.0 and perfect.pairwise_f == 1.0 and perfect.clusters == 2
    lumped = score_clusters(np.zeros(5, int), truth)
    assert lumped.bcubed_recall == 1.0 and lumped.pairwise_precision == pytest.approx(4 / 10)
    assert lumped.bcubed_precision == pytest.approx((3 * 3 / 5 + 2 * 2 / 5) / 5)
    noise = score_clusters(np.array([-1, -1, 0, 1, 1]), truth)
    assert noise.noise == 2 and noise.clusters == 4 and noise.bcubed_precision == 1.0
    with pytest.raises(ValueError, match="Unknown clustering method"):
        cluster_vectors(np.eye(3), method="kmeans", similarity=0.4)


def test_incremental_clustering_keeps_corrections(johns, tmp_path):
    state = tmp_path / "clusters.json"
    first = [p for k, (p, _) in enumerate(johns) if k % 11 < 6]
    later = [p for k, (p, _) in enumerate(johns) if k % 11 >= 6]
    person = {str(p): who for p, who in johns}
    photos = Collection(state, false_match_rate=1e-3)  # the stricter calibrated cut keeps the five Johns apart
    report = photos.add_photos(first)
    assert report.faces_added == len(first) and report.new_clusters == 5
    # a user's corrections: merge two people by mistake, name one, then split a cluster
    clusters = photos.clusters()
    merged = photos.merge(clusters[0].cluster_id, clusters[1].cluster_id)
    assert merged.size == 12
    named = photos.confirm(clusters[2].cluster_id, "john-a")
    photos.save()

    reopened = Collection(state)  # the state file keeps its operating point
    assert reopened.false_match_rate == 1e-3
    report = reopened.add_photos(first + later)
    assert report.skipped_known == len(first) and report.faces_added == len(later)
    assert report.joined_existing == len(later) and report.new_clusters == 0  # new photos join their person's cluster
    assert reopened.cluster(merged.cluster_id).size == 12 + 10  # the merge survived, and its two people's new photos joined it
    kept = reopened.cluster(named.cluster_id)
    assert kept.name == "john-a" and kept.confirmed and kept.size == 11
    assert len({person[s] for s in kept.sources}) == 1
    halves = reopened.split(merged.cluster_id)
    assert sorted(c.size for c in halves) == [11, 11]
    assert all(len({person[s] for s in c.sources}) == 1 for c in halves)  # cut in two along the two people
    with pytest.raises(ClusterError, match="No cluster 999"):
        reopened.merge(999, merged.cluster_id)
    with pytest.raises(ClusterError, match="not in cluster"):
        reopened.split(named.cluster_id, ["nope#0"])


def test_cli_clusters_a_folder_exports_and_enrols(faces, tmp_path):
    folder = faces / "johns"
    state, table, links, gallery = tmp_path / "s.json", tmp_path / "c.csv", tmp_path / "links", tmp_path / "g.db"
    result = runner.invoke(app, ["cluster", str(folder), "--state", str(state), "--csv", str(table), "--links", str(links), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.splitlines()[0])
    assert sorted(c["size"] for c in record["clusters"]) == [11] * 5
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 55 and {r["cluster"] for r in rows} == {str(c["cluster_id"]) for c in record["clusters"]}
    assert len(list(links.glob("cluster-*/*.jpg"))) == 55
    a, b = (str(c["cluster_id"]) for c in record["clusters"][:2])
    assert runner.invoke(app, ["clusters", "merge", a, b, "--state", str(state)]).exit_code == 0
    assert runner.invoke(app, ["clusters", "split", a, "--state", str(state)]).exit_code == 0
    shown = json.loads(runner.invoke(app, ["clusters", "show", "--state", str(state), "--json"]).stdout)
    assert sorted(c["size"] for c in shown["clusters"]) == [11] * 5
    assert all(len({Path(s).parent.name for s in c["sources"]}) == 1 for c in shown["clusters"])  # cut along the two Johns
    again = runner.invoke(app, ["cluster", str(folder), "--state", str(state), "--json"])
    assert len(json.loads(again.stdout.splitlines()[0])["clusters"]) == 5  # a second run adds nothing and keeps the split
    first = record["clusters"][0]
    assert runner.invoke(app, ["clusters", "confirm", str(first["cluster_id"]), "john", "--state", str(state)]).exit_code == 0
    enrolled = runner.invoke(app, ["clusters", "export", "--state", str(state), "--into-gallery", str(gallery)])
    assert enrolled.exit_code == 0 and "11 new samples" in enrolled.stdout
    again = runner.invoke(app, ["clusters", "export", "--state", str(state), "--into-gallery", str(gallery)])
    assert "0 new samples" in again.stdout  # enrolling twice adds nothing
    with open_gallery(gallery) as opened:
        assert opened.get_person("john").sample_count == 11
    # the gallery itself can be clustered: its samples are the faces
    result = runner.invoke(app, ["cluster", str(gallery), "--state", str(tmp_path / "g.json"), "--json"])
    assert result.exit_code == 0 and len(json.loads(result.stdout.splitlines()[0])["clusters"]) == 1


def test_cli_errors(tmp_path):
    missing = runner.invoke(app, ["clusters", "show", "--state", str(tmp_path / "none.json")])
    assert missing.exit_code == 2 and "No clustering state" in missing.output
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    broken = runner.invoke(app, ["clusters", "merge", "1", "2", "--state", str(bad)])
    assert broken.exit_code == 2 and "not a facesift clustering file" in broken.output
