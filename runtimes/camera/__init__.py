"""The camera application on top of the device core: open a source, run a model over it frame by
frame, detect events, record an annotated video and an events log::

    import runtimes
    from runtimes import camera

    p = runtimes.load("OUT/")
    for r in camera.run(p, "rtsp://..."):         # or 0, /dev/video0, a video, a frame folder, frames
        r.frame, r.prediction, r.latest, r.events, r.fps

Nothing below (``runtimes``'s device core) imports this package; ``edge-rcnn run`` is its CLI.
"""

from __future__ import annotations

from runtimes.camera.events import Event, EventDetector, EventKind
from runtimes.camera.loop import CameraRun, FrameResult, RunSummary, run, run_camera
from runtimes.camera.recording import AnnotatedVideo, EventLog
from runtimes.camera.sources import Frame, FrameSource, Reconnect, open_source

__all__ = [
    "AnnotatedVideo", "CameraRun", "Event", "EventDetector", "EventKind", "EventLog", "Frame", "FrameResult",
    "FrameSource", "Reconnect", "RunSummary", "open_source", "run", "run_camera",
]
