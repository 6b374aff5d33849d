"""Image datasets for tokenizer training: decoded once, augmented per sample."""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..core import TokError
from ..core.media import list_images, read_image, resize_shorter_side

logger = logging.getLogger(__name__)


class ImageFolder(Dataset):
    """Every image in `root` (recursively), resized so the shorter side is `resize`, then a
    random (or center) `crop` x `crop` crop and an optional horizontal flip; output in [-1, 1].

    Images are decoded once and kept as uint8, so epochs after the first cost no file I/O.
    """

    def __init__(self, root: str | os.PathLike, resize: int, crop: int, *, random_crop: bool = True, flip: bool = True):
        root = Path(root)
        if not root.is_dir():
            raise TokError(f"{root}: training data folder does not exist")
        folders = sorted({p.parent for p in root.rglob("*") if p.is_file()} | {root})
        self.paths = [p for folder in folders for p in _images_or_empty(folder)]
        if not self.paths:
            raise TokError(f"{root}: no images found for training")
        if crop > resize:
            raise ValueError(f"crop {crop} is larger than the resize {resize}")
        self.resize, self.crop, self.random_crop, self.flip = resize, crop, random_crop, flip
        self.images: list[Tensor] = []
        for path in self.paths:
            image, _ = read_image(path)
            self.images.append((resize_shorter_side(image, resize) * 255).round().to(torch.uint8))
        logger.info("loaded %d training images from %s", len(self.images), root)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Tensor:
        image = self.images[index]
        height, width = image.shape[-2:]
        if self.random_crop:
            top, left = random.randint(0, height - self.crop), random.randint(0, width - self.crop)
        else:
            top, left = (height - self.crop) // 2, (width - self.crop) // 2
        patch = image[:, top : top + self.crop, left : left + self.crop].float() / 127.5 - 1
        if self.flip and random.random() < 0.5:
            patch = patch.flip(-1)
        return patch


def _images_or_empty(folder: Path) -> list[Path]:
    try:
        return list_images(folder)
    except TokError:
        return []
