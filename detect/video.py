"""Masks in a video file or a webcam stream, fast on a small CPU.

Frames are decoded on a thread of their own; faces are detected on a downscaled copy every
``every`` frames and the boxes mapped back; all faces of a frame are classified in one batch by a
compiled function. Between detections the last labelled boxes are held (the scene rarely moves
far in a few frames). From a camera, a frame that arrives while the last is still being worked on
is dropped, so the picture stays live. A window with a live FPS overlay is shown only when asked
for and when the OpenCV build has a GUI and there is a display.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from augment.images import staged
from augment.interrupts import ctrl_c_noted, wait_in_steps
from detect.draw import draw_faces
from detect.faces import Labeller


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
# The highest frame rate of an annotated video made from a file (the JSON keeps every frame).
MAX_FILE_VIDEO_FPS = 60.0


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
    queued: queue.Queue = queue.Queue(maxsize=buffered)
    newest: list[tuple[int, float, np.ndarray]] = []
    arrived = threading.Condition()
    ended = threading.Event()
    stop = threading.Event()
    reconnecting = threading.Event()
    failed: list[str] = []
    tries = 0  # tries in a row to open a lost live source again, with no frame since

    def reopened(number: int) -> VideoSource | None:
        """The live source opened again after frame ``number`` - 1; None when the run stops first.
        ``SourceLost`` once RECONNECT_TRIES tries in a row have given no frame."""
        nonlocal tries
        reconnecting.set()
        try:
            while tries < RECONNECT_TRIES:
                if stop.wait(RECONNECT_PAUSE_S):
                    return None
                tries += 1
                with contextlib.suppress(VideoError):
                    return reopen()
        finally:
            reconnecting.clear()
        raise SourceLost(f"no frame came{_after(number)}, and {RECONNECT_TRIES} tries to open it again "
                         f"({RECONNECT_PAUSE_S:g} s apart) gave none")

    def read() -> None:
        nonlocal tries
        number, started, current, pending = 0, 0.0, capture, first
        try:
            while not stop.is_set():
                ok, frame = (True, pending) if pending is not None else current.read()
                pending = None
                if not ok and live and reopen is not None:
                    current.release()
                    if (again := reopened(number)) is None:
                        break
                    current, pending = again.capture, again.first
                    continue
                if not ok:
                    if live:
                        raise SourceLost(f"no frame came{_after(number)}")
                    break
                tries = 0
                if live:
                    arrival = time.monotonic()
                    started = arrival if number == 0 else started
                    with arrived:
                        newest[:] = [(number, arrival - started, frame)]
                        arrived.notify()
                else:  # the capture stands just past this frame, the given first one too
                    queued.put((number, frame_time(current.get(cv2.CAP_PROP_POS_MSEC), number, fps), frame))
                number += 1
        except SourceLost as error:
            failed.append(str(error))
        except Exception as error:  # a decoder failing mid-stream ends it; the reason is raised where frames are taken
            failed.append(f"frame {number}: cannot be read ({type(error).__name__}: {error})")
        finally:  # whatever happened, the stream ends: nothing waits for a frame that will not come
            current.release()
            if live:
                with arrived:
                    ended.set()
                    arrived.notify()
            else:
                queued.put(None)

    def take(timeout: float) -> tuple[int, float, np.ndarray] | None:
        if not live:
            return queued.get(timeout=timeout)
        with arrived:
            if not arrived.wait_for(lambda: newest or ended.is_set(), timeout):
                raise queue.Empty
            return newest.pop() if newest else None

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        with ctrl_c_noted() as interrupted:  # Ctrl-C is raised between waits, never inside the lock's
            while (item := wait_in_steps(take, interrupted, queue.Empty)) is not None:
                yield item
        if failed:
            raise SourceLost(failed[0])
    finally:
        stop.set()
        # A reader opening a stream again may take STREAM_TIMEOUT_MS to notice; it releases what it
        # opens by itself, so stopping does not wait for it.
        while reader.is_alive() and not reconnecting.is_set():  # unblock a reader waiting on a full queue
            try:
                queued.get_nowait()
            except queue.Empty:
                reader.join(0.05)


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
    """Run the whole loop on ``source`` (from ``open_source``), and release it.

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
    reopen = (lambda: open_source(source.name)) if source.live else None
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

