"""Who appears in a video, and when: ``facesift.video.analyze(clip, gallery=...)`` returns a typed timeline.

    from facesift.video import analyze
    result = analyze("clip.mp4", gallery="gallery.db")
    for track in result.tracks:
        print(track.track_id, track.person_id or track.decision, track.first_seen, track.last_seen)
"""

from facesift.video.analysis import TrackBox, VideoAnalysis, VideoTrack, analyze
from facesift.video.decode import VideoInfo, VideoReader, probe

__all__ = ["TrackBox", "VideoAnalysis", "VideoInfo", "VideoReader", "VideoTrack", "analyze", "probe"]
