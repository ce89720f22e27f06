"""Video decoding with ffmpeg: find the binary, probe a file, decode it to PNG frames.

The binary is imageio-ffmpeg's (shipped in its wheel) unless ``ffmpeg:`` in config names a system
one. Decoding goes through ffmpeg-python's filter graph (fps, scale, crop) straight to numbered PNGs,
so frame extraction runs at ffmpeg's own speed. A corrupt, truncated or frameless file stops with
an InputError naming it and quoting ffmpeg's reason.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
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


def decode_to_pngs(
    path: str | Path,
    out_dir: str | Path,
    exe: str,
    size: tuple[int, int] | None = None,
    resize: str = "cover",
    fps: float | None = None,
    max_frames: int | None = None,
) -> tuple[list[Path], VideoInfo]:
    """Decode ``path`` into out_dir/000000.png, ... ; returns the frame files and the probed info."""
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
    output = stream.output(str(out_dir / "%06d.png"), **options).global_args("-nostdin", "-v", "error")
    try:
        ffmpeg.run(output, cmd=exe, capture_stdout=True, capture_stderr=True)
    except ffmpeg.Error as err:
        raise InputError(path, f"ffmpeg failed to decode it: {_ffmpeg_reason(err.stderr.decode(errors='replace'))}") from None
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
    return frames, info
