"""``facesift video CLIP --gallery G``: who appears in a video, and when (a table, or the JSON timeline)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Column, Table

from facesift.cli.common import console, exit_with_error, print_error, progress_bar
from facesift.errors import FacesiftError, VideoError


def video(
    clip: str = typer.Argument(..., help="Video file, camera index (0) or stream URL (rtsp://, http://)."),
    gallery: str | None = typer.Option(None, "--gallery", "-g", help="Gallery URI or SQLite path to identify tracks with."),
    stride: int = typer.Option(3, min=1, help="Detect every Nth frame (more rarely while nothing moves)."),
    max_seconds: float | None = typer.Option(None, help="Stop after this many seconds (needed for a camera or live stream)."),
    threshold: float | None = typer.Option(None, help="Cosine threshold (instead of the gallery's operating point)."),
    fmr: float | None = typer.Option(None, help="Per-comparison false-match rate of the calibrated operating point."),
    annotate: Path | None = typer.Option(None, help="Write an MP4 with boxes and names here."),
    thumbnails: Path | None = typer.Option(None, help="Write each track's best face as track-N.jpg into this folder."),
    out: Path | None = typer.Option(None, help="Write the JSON timeline (every box) to this file."),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON timeline instead of a table."),
) -> None:
    """Find the people in a video: tracks, who each is (or unknown), and when they are on screen."""
    from facesift.video import analyze

    if annotate is not None and annotate.suffix.lower() != ".mp4":
        print_error("--annotate must end in .mp4")
        raise typer.Exit(2)
    try:
        with progress_bar(2) as bar:
            task = bar.add_task("Analysing", total=None)
            result = analyze(clip, gallery=gallery, stride=stride, max_seconds=max_seconds, threshold=threshold,
                             false_match_rate=fmr, annotate=annotate,
                             progress=lambda done, total: bar.update(task, completed=done, total=total or None))
    except VideoError as exc:
        print_error(str(exc))
        raise typer.Exit(3)
    except (FacesiftError, FileNotFoundError, OSError, ValueError) as exc:
        exit_with_error(exc)
    timeline = result.to_dict()
    if out is not None:
        out.write_text(json.dumps(timeline))
    if thumbnails is not None:
        thumbnails.mkdir(parents=True, exist_ok=True)
        for track in result.tracks:
            if track.thumbnail is not None:
                (thumbnails / f"track-{track.track_id}.jpg").write_bytes(track.thumbnail)
    if as_json:
        print(json.dumps(timeline))
        return
    table = Table("track", Column("who", min_width=18, overflow="fold"), "similarity", "first seen", "last seen", "faces", "quality")
    for track in result.tracks:
        who = track.person_id or track.decision.replace("_", " ")
        similarity = f"{track.similarity:.3f}" if track.similarity is not None else "-"
        table.add_row(str(track.track_id), who, similarity, f"{track.first_seen:.2f} s", f"{track.last_seen:.2f} s",
                      str(track.frames_used), f"{track.best_quality:.2f}")
    console.print(table)
    point = f"threshold {result.threshold:.4f}" if result.threshold is not None else "no gallery"
    if result.false_match_rate is not None:
        point += f" (false-match rate {result.false_match_rate:g})"
    summary = result.summary()
    console.print(f"{summary['frames']} frames, {summary['frames_detected']} detected, {len(result.tracks)} tracks; "
                  f"{summary['speed']}x real time; {point}")
