"""Video sources: a file, a camera or an IP camera's stream, opened and read frame by frame.

Frames are decoded on a thread of their own, so decoding overlaps the work on the frame before.
From a file every frame comes, timed by its own time stamp; from a camera or a live stream only
the newest, so the picture stays live however slow the work, and a source that stops sending is
opened again before the run gives it up.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from augment.interrupts import ctrl_c_noted, wait_in_steps


class VideoError(ValueError):
    """A video source or output that cannot be used; the message names it and says why."""


# Stream protocols of IP cameras: such a stream is live, as a webcam is (frames it sends while one
# is worked on are dropped; it has no end). An http(s) or file URL may well be a file: every frame.
LIVE_PROTOCOLS = ("rtsp", "rtsps", "rtmp", "rtmps", "udp", "tcp", "srt")
# How long a stream may take to open, or to send a frame, before it counts as lost; how often,
# and how far apart, a lost stream is opened again before the run gives it up.
STREAM_TIMEOUT_MS = 10_000
RECONNECT_TRIES = 3
RECONNECT_PAUSE_S = 2.0


def is_camera(source: str) -> bool:
    """Whether a video source names a camera (its index, a number) rather than a file."""
    return source.isdigit()


def stream_protocol(source: str) -> str | None:
    """The protocol of a video source given as a URL (``rtsp://...`` gives ``"rtsp"``); None for a path."""
    found = re.match(r"([a-zA-Z][a-zA-Z0-9+.-]*)://", source)
    return found.group(1).lower() if found else None


def is_live(source: str) -> bool:
    """Whether a video source runs live, a camera or an IP camera's stream, rather than a file."""
    return is_camera(source) or stream_protocol(source) in LIVE_PROTOCOLS


def quiet_capture_backends() -> None:
    """Keep FFmpeg's and OpenCV's own capture warnings ("No JPEG data found", "can't open camera by
    index") off the terminal: ``open_source`` says what is wrong in one line. Either environment
    variable, set by the user, wins."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's AV_LOG_QUIET, read at the first capture
    if "OPENCV_LOG_LEVEL" not in os.environ:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


@dataclass
class VideoSource:
    """An opened video: its name as given, its capture and, from a file or a stream, the first
    frame, already read to prove that it decodes (``frames`` gives it first)."""

    name: str
    capture: cv2.VideoCapture
    first: np.ndarray | None = None

    @property
    def live(self) -> bool:
        return is_live(self.name)

    @property
    def length(self) -> int | None:
        """How many frames a file says it holds (some containers only estimate it); None from a
        camera, or when the file does not say."""
        count = 0 if self.live else int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        return count if count > 0 else None


def open_source(source: str) -> VideoSource:
    """Open a video file, a camera when ``source`` is a number, or a stream given as a URL
    (``rtsp://`` from an IP camera, ``http://``); ``VideoError`` if it cannot be used.

    A file or a stream must give a first frame: FFmpeg opens some files it cannot decode (a text
    file named .jpg), which would otherwise pass for a video of no frames. A stream that does not
    open or send a frame within ``STREAM_TIMEOUT_MS`` counts as lost.
    """
    if is_camera(source):
        capture = cv2.VideoCapture(int(source))
        if not capture.isOpened():
            raise VideoError(f"{source}: no camera with this index")
        return VideoSource(source, capture)
    if stream_protocol(source) is not None:
        capture = cv2.VideoCapture(source, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS,
                                                            cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS])
        problem = "cannot be opened or read as a video stream"
    elif not Path(source).is_file():
        raise VideoError(f"{source}: video file not found")
    else:
        capture = cv2.VideoCapture(source)
        problem = "cannot be read as a video (not a video file, or in a format this OpenCV cannot decode)"
    readable, first = capture.read() if capture.isOpened() else (False, None)
    if not readable:
        capture.release()
        raise VideoError(f"{source}: {problem}")
    return VideoSource(source, capture, first)


def frame_time(position_ms: float, number: int, fps: float) -> float:
    """Seconds into a video file of its frame ``number``: the decoder's time stamp for it
    (``position_ms``, right where the frame rate varies, as phones record in dim light), or
    ``number / fps`` where the file gives none."""
    return position_ms / 1000 if position_ms > 0 or number == 0 else number / fps


def _after(number: int) -> str:
    return f" after frame {number - 1}" if number else ""


class SourceLost(VideoError):
    """Frames stopped coming before the source's end: a frame that cannot be decoded, a camera that
    stopped sending, a stream that could not be opened again. The frames before it were given."""


def frames(capture: cv2.VideoCapture, buffered: int = 8, live: bool = False, first: np.ndarray | None = None,
           fps: float = 30.0, reopen: Callable[[], VideoSource] | None = None
           ) -> Iterator[tuple[int, float, np.ndarray]]:
    """Decoded BGR frames, each with its number in the source and its time in seconds, read ahead
    on a background thread; ``first``, a frame already read from ``capture``, comes first.

    From a file every frame comes, in order (decoding overlaps detection), timed as the file says
    (``frame_time``; ``fps`` where it says nothing). From a ``live`` source (a camera) only the
    newest frame is kept: one that has not been taken when the next arrives is dropped, so what is
    shown never lags the camera, however slow detection is; its time is counted from the first
    frame's arrival.

    A live source has no end: when it stops sending, ``reopen`` (opening it again) is tried
    ``RECONNECT_TRIES`` times, ``RECONNECT_PAUSE_S`` apart, and the frames go on, numbered and timed
    on. ``SourceLost`` is raised, after the frames before it, when a live source is lost for good
    or a frame cannot be decoded.
    """
    reader = _FrameReader(capture, buffered, live, first, fps, reopen)
    reader.thread.start()
    try:
        with ctrl_c_noted() as interrupted:  # Ctrl-C is raised between waits, never inside the lock's
            while (item := wait_in_steps(reader.take, interrupted, queue.Empty)) is not None:
                yield item
        if reader.failure is not None:
            raise SourceLost(reader.failure)
    finally:
        reader.stop()


class _FrameReader:
    """The thread behind ``frames``: it reads the capture and hands frames over, to a queue from a
    file, or as the one newest frame from a live source; ``take`` takes them, None at the end."""

    def __init__(self, capture: cv2.VideoCapture, buffered: int, live: bool, first: np.ndarray | None, fps: float,
                 reopen: Callable[[], VideoSource] | None) -> None:
        self.capture, self.live, self.first, self.fps, self.reopen = capture, live, first, fps, reopen
        self.queued: queue.Queue = queue.Queue(maxsize=buffered)
        self.newest: list[tuple[int, float, np.ndarray]] = []
        self.arrived = threading.Condition()
        self.ended = threading.Event()
        self.stopping = threading.Event()
        self.reconnecting = threading.Event()
        self.failure: str | None = None
        self.tries = 0  # tries in a row to open a lost live source again, with no frame since
        self.thread = threading.Thread(target=self._read, daemon=True)

    def take(self, timeout: float) -> tuple[int, float, np.ndarray] | None:
        """The next frame (a live source's newest), None once the source has ended; ``queue.Empty``
        when none came within ``timeout`` seconds."""
        if not self.live:
            return self.queued.get(timeout=timeout)
        with self.arrived:
            if not self.arrived.wait_for(lambda: self.newest or self.ended.is_set(), timeout):
                raise queue.Empty
            return self.newest.pop() if self.newest else None

    def stop(self) -> None:
        """Stop reading, the frames not taken dropped."""
        self.stopping.set()
        # A reader opening a stream again may take STREAM_TIMEOUT_MS to notice; it releases what it
        # opens by itself, so stopping does not wait for it.
        while self.thread.is_alive() and not self.reconnecting.is_set():  # unblock a reader waiting on a full queue
            try:
                self.queued.get_nowait()
            except queue.Empty:
                self.thread.join(0.05)

    def _reopened(self, number: int) -> VideoSource | None:
        """The live source opened again after frame ``number`` - 1; None when the run stops first.
        ``SourceLost`` once RECONNECT_TRIES tries in a row have given no frame."""
        self.reconnecting.set()
        try:
            while self.tries < RECONNECT_TRIES:
                if self.stopping.wait(RECONNECT_PAUSE_S):
                    return None
                self.tries += 1
                with contextlib.suppress(VideoError):
                    return self.reopen()
        finally:
            self.reconnecting.clear()
        raise SourceLost(f"no frame came{_after(number)}, and {RECONNECT_TRIES} tries to open it again "
                         f"({RECONNECT_PAUSE_S:g} s apart) gave none")

    def _read(self) -> None:
        number, started, current, pending = 0, 0.0, self.capture, self.first
        try:
            while not self.stopping.is_set():
                ok, frame = (True, pending) if pending is not None else current.read()
                pending = None
                if not ok and self.live and self.reopen is not None:
                    current.release()
                    if (again := self._reopened(number)) is None:
                        break
                    current, pending = again.capture, again.first
                    continue
                if not ok:
                    if self.live:
                        raise SourceLost(f"no frame came{_after(number)}")
                    break
                self.tries = 0
                if self.live:
                    arrival = time.monotonic()
                    started = arrival if number == 0 else started
                    with self.arrived:
                        self.newest[:] = [(number, arrival - started, frame)]
                        self.arrived.notify()
                else:  # the capture stands just past this frame, the given first one too
                    self.queued.put((number, frame_time(current.get(cv2.CAP_PROP_POS_MSEC), number, self.fps), frame))
                number += 1
        except SourceLost as error:
            self.failure = str(error)
        except Exception as error:  # a decoder failing mid-stream ends it; the reason is raised where frames are taken
            self.failure = f"frame {number}: cannot be read ({type(error).__name__}: {error})"
        finally:  # whatever happened, the stream ends: nothing waits for a frame that will not come
            current.release()
            if self.live:
                with self.arrived:
                    self.ended.set()
                    self.arrived.notify()
            else:
                self.queued.put(None)
