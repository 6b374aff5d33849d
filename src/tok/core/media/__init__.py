"""Media readers and writers, one module per modality.

`MEDIA_EXTENSIONS` maps each modality to the file suffixes its reader accepts; `list_media`
expands a folder with it. A modality module adds its entry here when it lands.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import TokError
from .audio import AUDIO_EXTENSIONS, AudioInfo, list_audio, read_audio, write_audio
from .image import (
    IMAGE_EXTENSIONS,
    ImageInfo,
    check_model_square,
    from_model_range,
    list_images,
    read_image,
    resize_shorter_side,
    to_model_square,
    write_image,
)
from .listing import list_files
from .shape import SHAPE_EXTENSIONS
from .video import VIDEO_EXTENSIONS, VideoInfo, fit_frames, list_videos, read_video, write_video

# Video models take images too, as one-frame clips (OmniTokenizer's first frame is an image).
MEDIA_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "image": IMAGE_EXTENSIONS,
    "audio": AUDIO_EXTENSIONS,
    "video": VIDEO_EXTENSIONS + IMAGE_EXTENSIONS,
    "shape": SHAPE_EXTENSIONS,
}

# What `tok decode` writes when no output name is given.
DEFAULT_SUFFIXES = {"image": ".png", "audio": ".wav", "video": ".mp4", "shape": ".ply"}


def list_media(folder: str | os.PathLike, modality: str) -> list[Path]:
    """The files of `folder` (not recursive, sorted) that the `modality` reader accepts."""
    if modality not in MEDIA_EXTENSIONS:
        raise TokError(f"reading {modality} files is not supported yet")
    return list_files(folder, MEDIA_EXTENSIONS[modality], f"{modality} files")


__all__ = [
    "DEFAULT_SUFFIXES", "IMAGE_EXTENSIONS", "ImageInfo", "MEDIA_EXTENSIONS", "list_files", "list_images", "list_media",
    "read_image", "resize_shorter_side", "write_image", "to_model_square", "from_model_range", "check_model_square",
    "VIDEO_EXTENSIONS", "VideoInfo", "fit_frames", "list_videos", "read_video", "write_video",
    "AUDIO_EXTENSIONS", "AudioInfo", "list_audio", "read_audio", "write_audio",
    "SHAPE_EXTENSIONS",
]
