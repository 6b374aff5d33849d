"""Read, sample, fit and write videos.

`read_video` returns float RGB frames in [0, 1] as a (T, 3, H, W) tensor from a video file
(MP4, WebM, MKV, AVI, MOV, GIF: anything the FFmpeg inside PyAV decodes) or from a folder of
frame images (sorted by name). A clip is chosen with `start` (first frame index), `num_frames`
and either an integer `stride` or a target `fps` (frames picked nearest to a regular time grid).
`fit_frames` resizes the shorter side and center-crops to a square model grid, and
`write_video` writes MP4 (H.264) or GIF atomically. Every failure is a `TokError` naming the
file and the problem.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import TokError
from ..io import atomic_path
from .image import IMAGE_EXTENSIONS, read_image, resize_shorter_side
from .listing import list_files

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".gif")
WRITE_EXTENSIONS = (".mp4", ".gif")
# A folder of frames carries no frame rate; this one is recorded and used when writing it back.
FRAME_FOLDER_FPS = 25.0


@dataclass(frozen=True)
class VideoInfo:
    """What the source was and which frames were taken, recorded in .tok headers.

    `num_frames` is the number of frames read (the clip), `total_frames` the number the source
    holds when known (-1 otherwise), `fps` the rate of the returned frames (source rate divided
    by the stride, or the target rate).
    """

    path: str
    width: int
    height: int
    num_frames: int
    fps: float
    source_fps: float
    total_frames: int
    start: int
    stride: int
    format: str

    def to_dict(self) -> dict:
        return {
            "media": "video", "path": self.path, "width": self.width, "height": self.height,
            "num_frames": self.num_frames, "fps": self.fps, "source_fps": self.source_fps,
            "total_frames": self.total_frames, "start": self.start, "stride": self.stride, "format": self.format,
        }


class _Picker:
    """Decides which source frame indices belong to the clip, in one pass over the frames."""

    def __init__(self, start: int, num_frames: int | None, stride: int, step: float | None):
        self.start, self.num_frames, self.stride, self.step = start, num_frames, stride, step
        self.count = 0

    def next_index(self) -> int:
        if self.step is not None:  # target fps: the frame nearest to the k-th grid time
            return self.start + math.floor(self.count * self.step + 0.5)
        return self.start + self.count * self.stride

    def full(self) -> bool:
        return self.num_frames is not None and self.count >= self.num_frames


def _check_args(path: Path, start: int, num_frames: int | None, stride: int, fps: float | None) -> None:
    if start < 0:
        raise TokError(f"{path}: start frame must be >= 0, got {start}")
    if num_frames is not None and num_frames < 1:
        raise TokError(f"{path}: number of frames must be >= 1, got {num_frames}")
    if stride < 1:
        raise TokError(f"{path}: frame stride must be >= 1, got {stride}")
    if fps is not None and fps <= 0:
        raise TokError(f"{path}: target fps must be positive, got {fps}")
    if fps is not None and stride != 1:
        raise TokError(f"{path}: give either a frame stride or a target fps, not both")


def read_video(
    path: str | os.PathLike,
    *,
    start: int = 0,
    num_frames: int | None = None,
    stride: int = 1,
    fps: float | None = None,
    min_frames: int = 1,
    fit: int | None = None,
) -> tuple[Tensor, VideoInfo]:
    """Read a clip as float (T, 3, H, W) frames in [0, 1], plus what the source was.

    Args:
        start: index of the first source frame.
        num_frames: frames to return (None: until the end). Fewer available is an error.
        stride: take every `stride`-th frame.
        fps: instead of a stride, resample to this rate (nearest frames; never interpolates).
        min_frames: the fewest frames the caller can use (2 for a model that needs motion).
        fit: fit each frame to a `fit` x `fit` square (`fit_frames`) as it is decoded, so long
            videos are held in memory at the model's size, not the source's.
    """
    path = Path(path)
    _check_args(path, start, num_frames, stride, fps)
    if not path.exists():
        raise TokError(f"{path}: no such file or folder")
    if path.is_dir():
        frames, source_fps, total, fmt, size = _read_frame_folder(path, start, num_frames, stride, fps, fit)
    else:
        if path.stat().st_size == 0:
            raise TokError(f"{path}: empty file (0 bytes)")
        frames, source_fps, total, fmt, size = _read_video_file(path, start, num_frames, stride, fps, fit)
    if not frames:
        where = f" from frame {start}" if start else ""
        raise TokError(f"{path}: no video frames{where} (the source holds {total if total >= 0 else 'no'} frames)")
    if num_frames is not None and len(frames) < num_frames:
        how = f"at {fps:g} fps" if fps is not None else f"with stride {stride}"
        raise TokError(f"{path}: clip too short: {len(frames)} frames from frame {start} {how}, {num_frames} asked")
    if len(frames) < min_frames:
        raise TokError(f"{path}: {len(frames)} frame{'s' if len(frames) != 1 else ''}, but a clip of at least {min_frames} frames is needed")
    sizes = {tuple(f.shape) for f in frames}
    if len(sizes) != 1:
        raise TokError(f"{path}: frames differ in size ({', '.join(f'{s[2]}x{s[1]}' for s in sorted(sizes))})")
    video = torch.stack(frames)
    out_fps = fps if fps is not None else source_fps / stride
    height, width = size
    info = VideoInfo(str(path), width, height, len(frames), float(out_fps), float(source_fps), total, start, stride, fmt)
    return video, info


def _prepare(frame: Tensor, fit: int | None) -> Tensor:
    """uint8 (3, H, W) -> float in [0, 1], fitted to a square when asked."""
    frame = frame.float().div_(255)
    return fit_frames(frame[None], fit)[0] if fit else frame


def _read_video_file(path: Path, start: int, num_frames: int | None, stride: int, fps: float | None, fit: int | None):
    import av

    frames: list[Tensor] = []
    size = (0, 0)
    try:
        with av.open(str(path), mode="r") as container:
            streams = container.streams.video
            if not streams:
                raise TokError(f"{path}: holds no video stream")
            stream = streams[0]
            stream.thread_type = "AUTO"
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            source_fps = float(rate) if rate else FRAME_FOLDER_FPS
            total = int(stream.frames or -1)
            picker = _Picker(start, num_frames, stride, source_fps / fps if fps is not None else None)
            wanted = picker.next_index()
            index = -1
            for index, frame in enumerate(container.decode(stream)):
                # Nearest-frame resampling to a higher rate takes one source frame more than once.
                while index == wanted and not picker.full():
                    size = (frame.height, frame.width)
                    frames.append(_prepare(torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1), fit))
                    picker.count += 1
                    wanted = picker.next_index()
                if picker.full():
                    break
            else:
                total = index + 1  # decoded to the end: the true count (headers can be wrong)
            fmt = container.format.name
    except TokError:
        raise
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as e:
        raise TokError(f"{path}: cannot decode video ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'invalid data'})") from None
    return frames, source_fps, total, fmt, size


def _read_frame_folder(path: Path, start: int, num_frames: int | None, stride: int, fps: float | None, fit: int | None):
    files = list_files(path, IMAGE_EXTENSIONS, "frame images")
    picker = _Picker(start, num_frames, stride, FRAME_FOLDER_FPS / fps if fps is not None else None)
    frames: list[Tensor] = []
    size = (0, 0)
    while not picker.full() and picker.next_index() < len(files):
        frame = read_image(files[picker.next_index()])[0]
        size = tuple(frame.shape[-2:])
        frames.append(fit_frames(frame[None], fit)[0] if fit else frame)
        picker.count += 1
    return frames, FRAME_FOLDER_FPS, len(files), "frames", size


def fit_frames(frames: Tensor, size: int) -> Tensor:
    """(T, 3, H, W) in [0, 1] -> (T, 3, size, size): shorter side resized to `size`
    (antialiased bicubic), then the center square kept."""
    frames = resize_shorter_side(frames, size)
    height, width = frames.shape[-2:]
    top, left = (height - size) // 2, (width - size) // 2
    return frames[..., top : top + size, left : left + size].contiguous()


def _to_uint8(frames: Tensor) -> np.ndarray:
    """(T, 3, H, W) float in [0, 1] -> (T, H, W, 3) uint8."""
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"expected frames (T, 3, H, W), got {tuple(frames.shape)}")
    return (frames.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def write_video(frames: Tensor, path: str | os.PathLike, fps: float = FRAME_FOLDER_FPS, *, crf: int = 18) -> Path:
    """Write (T, 3, H, W) float frames in [0, 1] atomically as MP4 (H.264, yuv420p) or GIF.

    Odd sizes are padded by one edge row/column for H.264 (it needs even sizes); `crf` is the
    H.264 quality (0 lossless-ish in luma, 18 visually lossless, 23 FFmpeg's default).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_EXTENSIONS:
        raise TokError(f"{path}: unsupported video suffix {path.suffix!r}; use one of {', '.join(WRITE_EXTENSIONS)}")
    if not fps or fps <= 0 or not math.isfinite(fps):
        raise TokError(f"{path}: frame rate must be positive, got {fps}")
    array = _to_uint8(frames)
    if suffix == ".gif":
        return _write_gif(array, path, fps)
    import av

    if array.shape[1] % 2 or array.shape[2] % 2:
        array = np.pad(array, ((0, 0), (0, array.shape[1] % 2), (0, array.shape[2] % 2), (0, 0)), mode="edge")
    rate = Fraction(fps).limit_denominator(1001)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height = array.shape[2], array.shape[1]
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": "medium"}
            for image in array:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            container.mux(stream.encode())
    return path


def _write_gif(array: np.ndarray, path: Path, fps: float) -> Path:
    from PIL import Image

    images = [Image.fromarray(a) for a in array]
    duration = max(20, round(1000 / fps))  # GIF delays are in 10 ms units; browsers clamp < 20 ms
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0)
    return path


def list_videos(folder: str | os.PathLike) -> list[Path]:
    """Supported video files directly in `folder`, sorted; a TokError when there are none."""
    return list_files(folder, VIDEO_EXTENSIONS, "videos")
