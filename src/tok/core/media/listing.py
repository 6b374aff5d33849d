"""Listing the media files of a folder, shared by every modality's reader."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import TokError


def list_files(folder: str | os.PathLike, extensions: tuple[str, ...], noun: str) -> list[Path]:
    """Files directly in `folder` (not recursive) whose suffix is in `extensions`, sorted.

    A TokError names the folder when it is not one or holds no such file (`noun`: "images", ...).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise TokError(f"{folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in extensions)
    if not files:
        raise TokError(f"{folder}: no {noun} found (looked for {', '.join(extensions)})")
    return files
