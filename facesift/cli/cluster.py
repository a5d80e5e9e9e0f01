"""``facesift cluster DIR_OR_GALLERY``: group faces by person; ``facesift clusters ...``: look, merge, split, confirm.

The grouping lives in a state file (``--state``; for a folder, ``DIR/.facesift-clusters.json`` by default).
Running ``facesift cluster`` again on the same folder adds only the new photos: corrections stay.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Column, Table

from facesift.cli.common import console, exit_with_error, expand_images, print_error, progress_bar
from facesift.cluster.collection import DEFAULT_MIN_QUALITY, ClusterError, Collection, FaceRecord
from facesift.errors import FacesiftError

StateOpt = typer.Option(..., "--state", "-s", help="The clustering state file (JSON).")
JsonOpt = typer.Option(False, "--json", help="Print JSON instead of a table.")
app = typer.Typer(help="Look at, correct and export the clusters of a `facesift cluster` state file.", no_args_is_help=True)


def _open(state: Path, *, must_exist: bool = True, **options) -> Collection:
    if must_exist and not state.is_file():
        print_error(f"No clustering state at {state}; run `facesift cluster DIR` first")
        raise typer.Exit(2)
    try:
        return Collection(state, **options)
    except ClusterError as exc:
        print_error(str(exc))
        raise typer.Exit(2)


def _show(collection: Collection, as_json: bool) -> None:
    clusters = collection.clusters()
    if as_json:
        print(json.dumps({"similarity": collection.similarity, "false_match_rate": collection.false_match_rate,
                          "clusters": [c.to_dict() for c in clusters]}))
        return
    table = Table("cluster", "name", "faces", Column("photos", overflow="fold"))
    for c in clusters:
        shown = ", ".join(Path(s).name for s in c.sources[:4]) + (f" (+{len(c.sources) - 4})" if len(c.sources) > 4 else "")
        table.add_row(str(c.cluster_id), (c.name or "") + (" (confirmed)" if c.confirmed else ""), str(c.size), shown)
    console.print(table)
    console.print(f"{len(collection.faces)} faces in {len(clusters)} clusters; cut at similarity {collection.similarity:.4f} "
                  f"(false-match rate {collection.false_match_rate:g})")


def _outputs(collection: Collection, csv_out: Path | None, links: Path | None, into_gallery: str | None) -> None:
    if csv_out is not None:
        console.print(f"wrote {collection.write_csv(csv_out)} faces to {csv_out}")
    if links is not None:
        console.print(f"made {collection.write_links(links)} links under {links}")
    if into_gallery is not None:
        from facesift.gallery import open_gallery

        with open_gallery(into_gallery, model=collection.model) as gallery:
            added = collection.into_gallery(gallery)
        if not added:
            console.print("no confirmed cluster to enrol: `facesift clusters confirm` names one first")
        for person, count in added.items():
            console.print(f"enrolled {person!r}: {count} new samples")


def cluster(
    source: str = typer.Argument(..., help="A folder of photos (searched recursively), or a gallery URI / SQLite path."),
    state: Path | None = typer.Option(None, "--state", "-s", help="State file; default DIR/.facesift-clusters.json."),
    fmr: float | None = typer.Option(None, help="False-match rate of the cut (default 1e-2, chosen by measurement); "
                                     "fixed when the state is made."),
    min_quality: float = typer.Option(DEFAULT_MIN_QUALITY, help="Faces below this quality score are not clustered."),
    rebuild: bool = typer.Option(False, help="Re-cluster every face outside confirmed clusters."),
    csv_out: Path | None = typer.Option(None, "--csv", help="Write face,cluster rows to this CSV."),
    links: Path | None = typer.Option(None, help="Make a folder per cluster of links to its photos here."),
    into_gallery: str | None = typer.Option(None, help="Enrol each confirmed cluster as a person in this gallery."),
    as_json: bool = JsonOpt,
) -> None:
    """Group the faces of unlabelled photos by person (every face of every photo); incremental."""
    folder = Path(source)
    if state is None:
        if not folder.is_dir():
            print_error("--state is needed when clustering a gallery")
            raise typer.Exit(2)
        state = folder / ".facesift-clusters.json"
    collection = _open(state, must_exist=False, false_match_rate=fmr)
    try:
        if folder.is_dir():
            photos = expand_images([folder])
            with progress_bar(len(photos)) as bar:
                task = bar.add_task("Clustering", total=len(photos))
                report = collection.add_photos(photos, min_quality=min_quality, progress=lambda n: bar.advance(task, n))
        else:
            from facesift.gallery import open_gallery

            with open_gallery(source) as gallery:
                records = [FaceRecord(f"{s.person_id}/{s.sample_id}", s.person_id, (0.0, 0.0, 0.0, 0.0), s.quality, -1,
                                      s.embedding, s.content_sha256) for s in gallery.samples()]
            report = collection.add_embeddings(records)
        if rebuild:
            collection.rebuild()
    except (FacesiftError, OSError, ValueError) as exc:
        exit_with_error(exc)
    collection.save()
    for label, problem in report.failed:
        print_error(f"{label}: {problem}")
    if not as_json:
        console.print(f"{report.photos} new photos: {report.faces_added} faces ({report.joined_existing} joined existing clusters, "
                      f"{report.new_clusters} new clusters), {report.low_quality} faces below quality {min_quality}, "
                      f"{report.skipped_known} photos already clustered; state in {state}")
    _show(collection, as_json)
    _outputs(collection, csv_out, links, into_gallery)


@app.command()
def show(state: Path = StateOpt, as_json: bool = JsonOpt) -> None:
    """The clusters, largest first."""
    _show(_open(state), as_json)


def _correct(state: Path, action) -> None:
    collection = _open(state)
    try:
        result = action(collection)
    except ClusterError as exc:
        print_error(str(exc))
        raise typer.Exit(2)
    collection.save()
    for item in result if isinstance(result, list) else [result]:
        console.print(f"cluster {item.cluster_id}: {item.size} faces" + (f", {item.name}" if item.name else ""))


@app.command()
def merge(
    clusters: list[int] = typer.Argument(..., help="The cluster to keep, then those to merge into it."),
    state: Path = StateOpt,
) -> None:
    """Merge clusters into the first one named."""
    _correct(state, lambda c: c.merge(clusters[0], *clusters[1:]))


@app.command()
def split(
    cluster_id: int = typer.Argument(..., help="The cluster to split."),
    faces: list[str] | None = typer.Option(None, "--face", help="Face ids to move to a new cluster (default: cut in two)."),
    state: Path = StateOpt,
) -> None:
    """Split a cluster: move the given faces out, or cut it in two."""
    _correct(state, lambda c: c.split(cluster_id, faces))


@app.command()
def confirm(cluster_id: int = typer.Argument(...), name: str = typer.Argument(..., help="Who it is."), state: Path = StateOpt) -> None:
    """Name a cluster: it is this person (kept through rebuilds, enrolled by --into-gallery)."""
    _correct(state, lambda c: c.confirm(cluster_id, name))


@app.command()
def export(
    state: Path = StateOpt,
    csv_out: Path | None = typer.Option(None, "--csv"),
    links: Path | None = typer.Option(None),
    into_gallery: str | None = typer.Option(None),
) -> None:
    """Write the clusters as a CSV or folders of links, or enrol the confirmed ones into a gallery."""
    _outputs(_open(state), csv_out, links, into_gallery)
