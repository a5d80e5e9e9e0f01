"""Video: the real Hamilton clip with a gallery of its two named people, the CLI, and every kind of bad input."""

from __future__ import annotations

import json

import cv2
import pytest
from typer.testing import CliRunner

from facesift.cli import app
from facesift.errors import EmptyVideoError, NotAVideoError, TruncatedVideoError, VideoTooLongError
from facesift.gallery import open_gallery
from facesift.video import VideoReader, analyze, probe

runner = CliRunner()
LIN, ALEX = "lin-manuel-miranda", "alex-lacamoire"


@pytest.fixture(scope="module")
def clip(faces):
    return faces / "video" / "short_hamilton_clip.mp4"


@pytest.fixture(scope="module")
def gallery_path(faces, tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "people.db"
    with open_gallery(path) as gallery:
        for person in (LIN, ALEX):
            assert gallery.enroll(person, [faces / "video" / f"{person}.png"]).added == 1
    return path


@pytest.fixture(scope="module")
def timeline(clip, gallery_path):
    with open_gallery(gallery_path) as gallery:
        return analyze(clip, gallery=gallery)


def test_the_two_people_are_found_where_they_are_on_screen(timeline):
    assert timeline.frames == 275 and abs(timeline.duration - 9.18) < 0.05
    assert timeline.frames_detected < timeline.frames / 2  # detection is not run on every frame
    people = timeline.people()
    assert set(people) == {LIN, ALEX}
    # Lin Manuel Miranda: on stage at the start, then facing the camera from about 3 s to 7 s
    assert any(a <= 0.2 for a, _ in people[LIN])
    assert any(a <= 3.2 and b >= 6.8 for a, b in people[LIN])
    # Alex Lacamoire: a small face at the piano in the first shot, and nowhere else
    assert all(b <= 1.0 for _, b in people[ALEX])
    # the audience at the end (7 s on) is nobody we know
    late = [t for t in timeline.tracks if t.first_seen >= 7.0]
    assert len(late) >= 4 and all(t.person_id is None for t in late)
    assert timeline.threshold is not None


def test_one_person_is_one_track(timeline):
    assert 5 <= len(timeline.tracks) <= 20
    lin = [t for t in timeline.tracks if t.person_id == LIN and t.last_seen - t.first_seen >= 3.0]
    assert len(lin) == 1  # the whole frontal shot (about 100 detections at stride 3) stays one track
    track = lin[0]
    frames = [b.frame for b in track.boxes]
    assert frames == sorted(frames) and frames[0] == track.first_frame and frames[-1] == track.last_frame
    assert sum(b.detected for b in track.boxes) < len(track.boxes)  # boxes between detections are interpolated
    assert track.frames_used >= 5 and track.similarity > timeline.threshold and track.best_quality > 0.5
    assert track.thumbnail[:2] == b"\xff\xd8"  # a JPEG of its best face


def test_timeline_is_json(timeline):
    record = json.loads(json.dumps(timeline.to_dict()))
    assert {"source", "fps", "tracks", "threshold", "false_match_rate"} <= set(record)
    track = record["tracks"][0]
    assert {"track_id", "person_id", "decision", "similarity", "first_seen", "last_seen", "best_frame", "boxes"} <= set(track)
    assert "thumbnail" not in track


def test_cli_json_thumbnails_and_annotated_video(first_second_clip, gallery_path, tmp_path):
    annotated, thumbs = tmp_path / "annotated.mp4", tmp_path / "thumbs"
    result = runner.invoke(app, ["video", str(first_second_clip), "--gallery", str(gallery_path), "--stride", "2", "--json",
                                 "--annotate", str(annotated), "--thumbnails", str(thumbs)])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert LIN in {t["person_id"] for t in record["tracks"]}  # (re-encoding blurs Alex's 23 px face below the threshold)
    assert len(list(thumbs.glob("track-*.jpg"))) == len(record["tracks"])
    written = cv2.VideoCapture(str(annotated))
    assert written.isOpened() and int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == 30
    table = runner.invoke(app, ["video", str(first_second_clip), "--gallery", str(gallery_path)])
    assert table.exit_code == 0 and "lin-manuel" in table.stdout and "real time" in table.stdout


def test_without_a_gallery_tracks_are_not_searched(first_second_clip):
    result = analyze(first_second_clip, stride=2)
    assert result.tracks and all(t.person_id is None and not t.candidates for t in result.tracks)
    assert {t.decision for t in result.tracks} <= {"not_searched", "no_usable_face"} and "not_searched" in {
        t.decision for t in result.tracks
    }


def test_bad_input_gives_a_clear_error(tmp_path, clip, faces):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    with pytest.raises(NotAVideoError, match="not a video"):
        probe(text)
    with pytest.raises(NotAVideoError, match="still image"):
        probe(faces / "video" / f"{LIN}.png")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[:300_000])
    with pytest.raises(TruncatedVideoError, match="cut short"):
        probe(cut)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(EmptyVideoError, match="0 bytes"):
        probe(empty)
    no_frames = tmp_path / "no_frames.mp4"
    cv2.VideoWriter(str(no_frames), cv2.VideoWriter_fourcc(*"mp4v"), 30, (640, 360)).release()
    with pytest.raises(EmptyVideoError, match="no frames"):
        probe(no_frames)
    with pytest.raises(FileNotFoundError):
        probe(tmp_path / "missing.mp4")
    with pytest.raises(VideoTooLongError, match="limit is 5 s"):
        VideoReader(clip, max_seconds=5)
    with pytest.raises(ValueError, match="stride"):
        analyze(clip, stride=0)
    result = runner.invoke(app, ["video", str(cut)])
    assert result.exit_code == 3 and "cut short" in result.output
