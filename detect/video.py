"""Masks in a video file or a webcam stream, fast on a small CPU: the loop and its outputs.

Frames come decoded from a thread of their own (``detect.sources``); faces are detected on a
downscaled copy every ``every`` frames and the boxes mapped back; all faces of a frame are
classified in one batch by a compiled function. Between detections the last labelled boxes are
held (the scene rarely moves far in a few frames). From a camera, a frame that arrives while the
last is still being worked on is dropped, so the picture stays live. A window with a live FPS
overlay is shown only when asked for and when the OpenCV build has a GUI and there is a display.
The labelled frames go to an MP4 (``VideoOut``) and to JSON, whole at the end or line by line
(``RecordLines``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from augment.images import staged
from detect import sources
from detect.draw import draw_faces
from detect.faces import Labeller
from detect.sources import SourceLost, VideoError, VideoSource, frames

# The highest frame rate of an annotated video made from a file (the JSON keeps every frame).
MAX_FILE_VIDEO_FPS = 60.0


def display_available() -> bool:
    """Whether a window can be opened: a display is set and this OpenCV build has a GUI."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.name == "nt"):
        return False
    try:
        cv2.namedWindow("probe", cv2.WINDOW_NORMAL)
        cv2.destroyWindow("probe")
        return True
    except cv2.error:
        return False


@dataclass
class VideoResult:
    """What a run saw: one record per frame (unless they went elsewhere as they came), the faces
    on detection frames, how long it took, whether Ctrl-C ended it, and why the frames stopped
    before the source's end (``failure``: a frame that cannot be decoded, a camera or stream
    lost), if they did."""

    records: list[dict] = field(default_factory=list)
    frames: int = 0
    faces: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    failure: str | None = None

    def summary(self, source: str) -> dict:
        """The run in brief: everything but the records."""
        return {"source": source, "frames": self.frames, "seconds": round(self.seconds, 3),
                "fps": round(self.frames / self.seconds, 2) if self.seconds else None,
                "interrupted": self.interrupted, "failure": self.failure}

    def as_json(self, source: str) -> dict:
        return {**self.summary(source), "records": self.records}


class RecordLines:
    """Frame records written to a file as JSON lines as they come, each line flushed: a camera
    watched for days would otherwise hold every record in memory until the end (some 400 bytes a
    frame), and lose them all if the process were killed. The file is opened at the first record,
    so a run that sees no frame leaves none; the run's ``summary`` is its last line."""

    def __init__(self, path: Path):
        self.path = path
        self.file = None

    def write(self, record: dict) -> None:
        """Add one line; an OSError (a full disk) names the file."""
        try:
            if self.file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.file = open(self.path, "w", encoding="utf-8")
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()
        except OSError as error:
            raise OSError(error.errno, error.strerror or str(error), str(self.path)) from None

    def close(self, summary: dict | None = None) -> None:
        """Add ``summary`` (when the run saw frames) and close the file."""
        if self.file is not None:
            if summary is not None:
                self.write(summary)
            self.file.close()


def process_video(source: VideoSource, find: Labeller, every: int = 3, out: Path | None = None,
                  display: bool = False, max_frames: int | None = None,
                  on_frame: Callable[[int], None] | None = None,
                  on_record: Callable[[dict], None] | None = None) -> VideoResult:
    """Run the whole loop on ``source`` (from ``sources.open_source``), and release it.

    ``find`` labels the faces of a frame (``detect.faces.make_labeller``, made to detect on a
    reduced copy); it runs every ``every`` frames. With ``out`` the annotated video is written
    (MP4), with ``display`` shown. Errors about the source or the output are raised before the
    first frame is processed. Ctrl-C ends the run like the end of the stream (without a window it
    is how a camera run stops): the result holds every frame seen, marked ``interrupted``. A source
    lost on the way (a frame that cannot be decoded; a camera or stream that stops sending and
    cannot be opened again, see ``frames``) ends it too, the result saying why in ``failure``; one
    lost before its first frame raises ``SourceLost``. Each frame's record goes to ``on_record``
    (``RecordLines.write``, say) instead of into the result's records, when given.
    """
    fps = source.capture.get(cv2.CAP_PROP_FPS) or 30.0
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(source.capture.release)
        writer = None
        if out is not None:  # written under a temporary name: a run that dies leaves any earlier video whole
            # A file's frames are placed by their times (``VideoOut.show_from``), so its video need
            # not take a rate some containers report for their time base (1000 for a browser's WebM).
            rate = fps if source.live else min(fps, MAX_FILE_VIDEO_FPS)
            writer = VideoOut(cleanup.enter_context(staged(out)), rate, out)
            cleanup.callback(writer.release)  # runs before the rename: the file is complete when it appears
        if display:
            cleanup.callback(cv2.destroyAllWindows)
        return _label_frames(source, find, every, writer, display, max_frames, on_frame, on_record, fps)


class VideoOut:
    """An MP4 writer, opened at the first frame's size: what a capture reports before its first
    frame can be 0 (some cameras). A later frame of another size is scaled to it, since the
    encoder would drop it without a word. A frame may be written as several (``copies``), or
    none, so that the video keeps the source's time: a camera frame standing for those dropped
    before it, a file's frames placed by their time stamps where the rate varies."""

    def __init__(self, path: Path, fps: float, name: Path):
        """``path``: the file to write; ``name``: the output as the user gave it, for messages."""
        self.path, self.fps, self.name = path, fps, name
        self.writer: cv2.VideoWriter | None = None
        self.size = (0, 0)
        self.written = 0
        self.pending: np.ndarray | None = None  # the last frame given to ``show_from``, shown until the next

    def open(self, frame_shape: tuple[int, ...]) -> None:
        """Start the file at this frame shape, (H, W, ...); ``VideoError`` if it cannot be written."""
        self.size = frame_shape[1], frame_shape[0]
        self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, self.size)
        if not self.writer.isOpened():
            raise VideoError(f"{self.name}: cannot be written as a video")

    def write(self, bgr: np.ndarray, copies: int = 1) -> None:
        """Add a BGR frame (after ``open``), ``copies`` times."""
        if (bgr.shape[1], bgr.shape[0]) != self.size:
            bgr = cv2.resize(bgr, self.size, interpolation=cv2.INTER_AREA)
        for _ in range(copies):
            self.writer.write(bgr)
        self.written += max(copies, 0)

    def show_from(self, bgr: np.ndarray, seconds: float) -> None:
        """Add a BGR frame shown from ``seconds`` after the video's start: the one before it fills
        every frame of the video up to then, as a player would show it. Where frames come faster
        than the video's rate some are left out of it; where slower, each stays on for several."""
        if self.pending is not None:
            self.write(self.pending, math.ceil(seconds * self.fps - 1e-3) - self.written)
        self.pending = bgr

    def release(self) -> None:
        """Write the last frame given to ``show_from``, if any, and close the file."""
        if self.pending is not None:
            self.write(self.pending)
            self.pending = None
        if self.writer is not None:
            self.writer.release()


def _label_frames(source: VideoSource, find: Labeller, every: int, writer: VideoOut | None, display: bool,
                  max_frames: int | None, on_frame: Callable[[int], None] | None,
                  on_record: Callable[[dict], None] | None, fps: float) -> VideoResult:
    """``process_video``'s loop over the frames; Ctrl-C ends it with the frames seen."""
    result, faces, previous, start = VideoResult(), [], -1, 0.0
    keep = on_record or result.records.append
    reopen = (lambda: sources.open_source(source.name)) if source.live else None
    started = time.perf_counter()
    try:
        for shown, (number, seconds, bgr) in enumerate(frames(source.capture, live=source.live, first=source.first,
                                                               fps=fps, reopen=reopen)):
            if max_frames is not None and shown >= max_frames:
                break
            if shown == 0 and writer is not None:
                writer.open(bgr.shape)  # before any work: an output that cannot be written fails at once
                start = seconds
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)  # a strided numpy copy costs 40 times as much at 1080p
            detected = shown % every == 0
            if detected:
                faces = find(rgb)
                result.faces += len(faces)
            keep({"frame": number, "time": round(seconds, 3), "detected": detected,
                  "faces": [face.as_json() for face in faces]})
            result.frames = shown + 1
            if writer is not None or display:
                elapsed = time.perf_counter() - started
                note = f"{result.frames / elapsed:.1f} FPS" if display and elapsed > 0 else None
                drawn = cv2.cvtColor(draw_faces(rgb, faces, note), cv2.COLOR_RGB2BGR)
                if writer is not None and source.live:  # a camera frame stands for those dropped before it
                    writer.write(drawn, copies=number - previous)
                    previous = number
                elif writer is not None:  # a phone records fewer frames a second in dim light
                    writer.show_from(drawn, seconds - start)
                if display:
                    cv2.imshow("masks (q quits)", drawn)
                    if cv2.waitKey(1) & 0xFF == ord("q"):
                        break
            if on_frame is not None:
                on_frame(shown)
    except KeyboardInterrupt:
        result.interrupted = True
    except SourceLost as lost:
        if result.frames == 0:
            raise SourceLost(f"{source.name}: {lost}") from None
        result.failure = str(lost)  # the frames before it are kept, and written
    result.seconds = time.perf_counter() - started
    return result

