"""Video decoding with ffmpeg: find the binary, probe a file, decode it to PNG frames.

The binary is imageio-ffmpeg's (shipped in its wheel) unless ``ffmpeg:`` in config names a system
one. Decoding goes through ffmpeg-python's filter graph (fps, scale, crop) straight to numbered PNGs,
so frame extraction runs at ffmpeg's own speed. A corrupt, truncated or frameless file stops with
an InputError naming it and quoting ffmpeg's reason.

A file that decodes with errors (damaged packets: the decoder conceals them and goes on, ffmpeg
exits 0) is reported frame by frame: ffmpeg runs with ``-loglevel level+info -debug_ts``, and its
decoder thread logs ``decoder -> pts:... time_base:...`` as each frame leaves the decoder, right
after ``corrupt decoded frame`` when the decoder flagged that frame (decode_error_flags or
AV_FRAME_FLAG_CORRUPT: ffmpeg 7 and later) and after ``Decoding error`` / ``Error submitting
packet`` when a frame was lost. One thread writes these lines, so they pair with their frame
whatever the codec's threading. Decoders that log errors without flagging any frame (MJPEG) have
their error lines tied to the next frame out of the decoder (exact for decoders that return each
frame as they decode it, as MJPEG does; a frame-threaded decoder that never flags may be a frame
early). With ``fps`` resampling, a written frame has errors when a decoded frame it stands for
does: the frames since the previous written one, as ffmpeg's fps filter picks them (the last
frame at or before each tick, timestamps rounded to the nearest tick).
"""

from __future__ import annotations

import io
import math
import os
import re
import subprocess
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import ffmpeg

from pipeline.core.errors import InputError


def ffmpeg_exe(configured: str | None = None) -> str:
    """The ffmpeg binary: the configured path, else imageio-ffmpeg's."""
    if configured:
        if not (os.path.isfile(configured) and os.access(configured, os.X_OK)):
            raise InputError("config key 'ffmpeg'", f"{configured!r} is not an executable file")
        return configured
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    duration: float | None  # seconds, from the container header


_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_VIDEO = re.compile(r"Stream #\S+.*?Video:.*?(\d{2,5})x(\d{2,5})")
_FPS = re.compile(r"(\d+(?:\.\d+)?)\s*(fps|tbr)")


def _ffmpeg_reason(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if any(k in line for k in ("moov atom not found", "Invalid data", "could not find codec", "End of file")):
            return line
    return lines[-1] if lines else "no output from ffmpeg"


def probe(path: str | Path, exe: str) -> VideoInfo:
    """Read size, frame rate and duration from the header (ffprobe is not shipped, ffmpeg -i is)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "video file does not exist")
    if path.stat().st_size == 0:
        raise InputError(path, "video file is empty (0 bytes)")
    result = subprocess.run([exe, "-hide_banner", "-i", str(path)], capture_output=True, text=True)
    stderr = result.stderr
    stream = next((line for line in stderr.splitlines() if "Video:" in line and "Stream #" in line), None)
    if "Error opening input" in stderr or "Invalid data" in stderr:
        raise InputError(path, f"ffmpeg cannot open it (corrupt or truncated video?): {_ffmpeg_reason(stderr)}")
    if stream is None:
        raise InputError(path, "contains no video stream")
    size = _VIDEO.search(stream)
    fps = _FPS.search(stream)
    if size is None or fps is None:
        raise InputError(path, f"cannot read frame size / rate from ffmpeg's stream line: {stream.strip()}")
    duration = _DURATION.search(stderr)
    seconds = None
    if duration:
        h, m, s = duration.groups()
        seconds = int(h) * 3600 + int(m) * 60 + float(s)
    return VideoInfo(int(size.group(1)), int(size.group(2)), float(fps.group(1)), seconds)


_DECODED = re.compile(r"\] decoder -> .*?\b(?:frame_)?pts:(-?\d+|NOPTS)\b.*?\btime_base:(\d+)/(\d+)")
_ERROR = re.compile(r"\[(?:error|fatal|panic)\] (.*)")
_FLAGGED = "corrupt decoded frame"
_LOST = ("Decoding error", "Error submitting packet", "Error while decoding stream")  # the last: ffmpeg < 7


@dataclass
class _Marks:
    """What ffmpeg logged of one decoded frame (before its ``decoder ->`` line)."""

    flagged: bool = False       # the decoder flagged it corrupt
    lost: bool = False          # the decoder lost a frame (returned an error) since the previous one
    logged_error: bool = False  # an error was logged since the previous frame


@dataclass
class DecodeLog:
    """What ffmpeg's log (``-loglevel level+info -debug_ts``) says of each decoded frame, read line
    by line (a long video's log is never held whole)."""

    times: list[Fraction | None] = field(default_factory=list)  # seconds (pts x time base)
    marks: list[_Marks] = field(default_factory=list)
    errors: deque = field(default_factory=lambda: deque(maxlen=20))  # the last error messages
    first_error: str | None = None
    pending: _Marks = field(default_factory=_Marks)  # logged since the last decoded frame

    def read(self, line: str) -> None:
        decoded = _DECODED.search(line)
        if decoded:
            pts, num, den = decoded.groups()
            self.times.append(None if pts == "NOPTS" else int(pts) * Fraction(int(num), int(den)))
            self.marks.append(self.pending)
            self.pending = _Marks()
        elif _FLAGGED in line:
            self.pending.flagged = True
        elif any(lost in line for lost in _LOST):
            self.pending.lost = True
        error = _ERROR.search(line)
        if error:
            self.pending.logged_error = True
            self.errors.append(error.group(1).strip())
            self.first_error = self.first_error or error.group(1).strip()

    def damaged(self) -> list[int]:
        """Decoded frames with errors: those after a lost frame, and those flagged or, from a decoder
        that flags none, those after its error messages. What is logged after the last frame counts
        for the last frame."""
        marks = self.marks + [self.pending]
        flags = any(m.flagged for m in marks)
        bad = [m.lost or (m.flagged if flags else m.logged_error) for m in marks]
        if bad.pop() and bad:
            bad[-1] = True
        return [i for i, damaged in enumerate(bad) if damaged]


def output_sources(times: list[Fraction | None], fps: float | None, count: int) -> list[int]:
    """For each of the ``count`` frames written, the decoded frame it shows: the same one without
    resampling; with ``fps``, the one ffmpeg's fps filter picks (timestamps rounded to the nearest
    output tick from the first frame's; each tick shows the last frame at or before it)."""
    if not fps:
        return list(range(count))
    rate, ticks, last = Fraction(str(fps)), [], 0
    for time in times:
        last = last if time is None else math.floor(time * rate + Fraction(1, 2))
        ticks.append(last)
    sources, source = [], 0
    for n in range(count):
        while source + 1 < len(ticks) and ticks[source + 1] <= ticks[0] + n:
            source += 1
        sources.append(source)
    return sources


def written_frames_with_errors(log: DecodeLog, fps: float | None, count: int) -> list[int]:
    """The written frames that stand for a decoded frame with errors: each stands for the decoded
    frames since the previous written one (those the fps filter dropped included)."""
    damaged = set(log.damaged())
    sources = output_sources(log.times, fps, count)
    previous, found = -1, []
    for n, source in enumerate(sources):
        if any(i in damaged for i in range(previous + 1, source + 1)):
            found.append(n)
        previous = source
    return found


@dataclass(frozen=True)
class DecodedVideo:
    frames: list[Path]             # out_dir/000000.png, ...
    info: VideoInfo
    frames_with_errors: list[int]  # numbers of the written frames that show a decode error
    first_error: str | None        # ffmpeg's first error message, for the report


def _run_logged(output, exe: str, path: Path) -> DecodeLog:
    """Run the ffmpeg command, reading its log as it goes; InputError quoting ffmpeg if it fails."""
    args = output.global_args("-nostdin", "-nostats", "-hide_banner", "-loglevel", "level+info",
                              "-debug_ts").compile(cmd=exe)
    log = DecodeLog()
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for line in io.TextIOWrapper(process.stderr, errors="replace"):
        log.read(line)
    if process.wait() != 0:
        reason = _ffmpeg_reason("\n".join(log.errors))
        raise InputError(path, f"ffmpeg failed to decode it: {reason}")
    return log


def decode_to_pngs(
    path: str | Path,
    out_dir: str | Path,
    exe: str,
    size: tuple[int, int] | None = None,
    resize: str = "cover",
    fps: float | None = None,
    max_frames: int | None = None,
) -> DecodedVideo:
    """Decode ``path`` into out_dir/000000.png, ... ; returns the frame files, the probed info and the
    frames with decode errors (see the module's docstring)."""
    path, out_dir = Path(path), Path(out_dir)
    info = probe(path, exe)
    stream = ffmpeg.input(str(path)).video
    if fps:
        stream = stream.filter("fps", fps=fps)
    if size:
        width, height = size
        if resize == "cover":
            stream = stream.filter("scale", width, height, force_original_aspect_ratio="increase", flags="area")
            stream = stream.filter("crop", width, height)
        else:
            stream = stream.filter("scale", width, height, flags="area")
    options = {"start_number": 0, "fps_mode": "passthrough"}
    if max_frames:
        options["frames:v"] = max_frames
    log = _run_logged(stream.output(str(out_dir / "%06d.png"), **options), exe, path)
    frames = sorted(out_dir.glob("*.png"))
    if not frames:
        raise InputError(path, "no video frames could be decoded (zero-frame video?)")
    if info.duration:
        expected = info.duration * (fps or info.fps)
        if max_frames:
            expected = min(expected, max_frames)
        if len(frames) < 0.9 * expected - 2:
            raise InputError(path, f"truncated or corrupt: decoded {len(frames)} frames, its header promises "
                                   f"about {expected:.0f}")
    return DecodedVideo(frames, info, written_frames_with_errors(log, fps, len(frames)), log.first_error)
