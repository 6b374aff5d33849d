"""Read, validate and write images.

`read_image` returns float RGB in [0, 1] as a (3, H, W) tensor, whatever the file holds:
grayscale, palette, RGBA/LA (composited onto white), CMYK, 16-bit, with EXIF orientation applied.
Every failure is a `TokError` naming the file and the problem.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from ..errors import TokError
from .listing import list_files
from ..io import atomic_path

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
# A decompression bomb check in pixels (PIL's default warns at ~89 MP); refuse clearly instead.
MAX_PIXELS = 16384 * 16384


@dataclass(frozen=True)
class ImageInfo:
    """What the source file was, recorded in .tok headers."""

    path: str
    width: int
    height: int
    mode: str
    format: str

    def to_dict(self) -> dict:
        return {"media": "image", "path": self.path, "width": self.width, "height": self.height, "mode": self.mode, "format": self.format}


def _to_float_rgb(img: Image.Image) -> Tensor:
    """Any PIL mode -> float32 (3, H, W) in [0, 1], a channels-last view of (H, W, 3) memory."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit (or 32-bit integer) grayscale: scale by the type's range, not to 8 bits first.
        arr = np.asarray(img, dtype=np.float64)
        full_scale = 65535.0 if mode.startswith("I;16") or arr.max() <= 65535 else float(arr.max())
        return _gray_to_rgb(np.clip(arr / full_scale, 0.0, 1.0).astype(np.float32))
    if mode == "F":
        return _gray_to_rgb(np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0))
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("LA", "La", "PA"):
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "RGBa"):
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
    if img.mode != "RGB":
        img = img.convert("RGB")
    # The bytes go to float in torch: the same float32 x / 255 as numpy's, in one multi-threaded
    # pass instead of numpy's two single-threaded ones (a third of a 12-MP photo's read time).
    # np.asarray of a PIL image is read-only; torch only reads it here, to make the float copy.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        rgb = torch.from_numpy(np.asarray(img))
    return rgb.float().div_(255).permute(2, 0, 1)


def _gray_to_rgb(gray: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(gray)).unsqueeze(-1).expand(-1, -1, 3).contiguous().permute(2, 0, 1)


def read_image(path: str | os.PathLike) -> tuple[Tensor, ImageInfo]:
    """Read an image file as a float (3, H, W) tensor in [0, 1], plus what the file was."""
    path = Path(path)
    if not path.exists():
        raise TokError(f"{path}: no such file")
    if path.is_dir():
        raise TokError(f"{path}: is a folder, not an image")
    if path.stat().st_size == 0:
        raise TokError(f"{path}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                fmt = img.format or path.suffix.lstrip(".").upper()
                if img.width * img.height > MAX_PIXELS:
                    raise TokError(f"{path}: image of {img.width}x{img.height} pixels is too large")
                img.load()  # decode now: truncated files fail here, not later
                ImageOps.exif_transpose(img, in_place=True)
                mode = img.mode
                tensor = _to_float_rgb(img)
    except TokError:
        raise
    except UnidentifiedImageError:
        raise TokError(f"{path}: not an image file, or a format PIL cannot read") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        raise TokError(f"{path}: corrupt or truncated image ({e})") from None
    height, width = tensor.shape[1:]
    if width == 0 or height == 0:
        raise TokError(f"{path}: image has zero size ({width}x{height})")
    return tensor, ImageInfo(str(path), width, height, mode, fmt)


def resize_shorter_side(image: Tensor, size: int) -> Tensor:
    """(..., 3, H, W) in [0, 1] -> shorter side `size` (antialiased bicubic), clamped to [0, 1]."""
    height, width = image.shape[-2:]
    scale = size / min(height, width)
    new = (max(size, round(height * scale)), max(size, round(width * scale)))
    if new == (height, width):
        return image
    batch = image.reshape(-1, *image.shape[-3:]).float()
    resized = torch.nn.functional.interpolate(batch, size=new, mode="bicubic", antialias=True, align_corners=False)
    return resized.reshape(*image.shape[:-2], *new).clamp(0, 1)


def to_model_square(image: Tensor, size: int) -> Tensor:
    """(3, H, W) or (B, 3, H, W) in [0, 1] -> (B, 3, size, size) in [-1, 1]: shorter side resized
    to `size` (antialiased bicubic), then center-cropped. The input of every square image model."""
    if image.ndim == 3:
        image = image[None]
    if image.ndim != 4 or image.shape[1] != 3:
        raise TokError(f"expected an image (3, H, W) or batch (B, 3, H, W), got {tuple(image.shape)}")
    image = resize_shorter_side(image, size)
    top, left = (image.shape[-2] - size) // 2, (image.shape[-1] - size) // 2
    return (image[..., top : top + size, left : left + size].clamp(0, 1) * 2 - 1).contiguous()


def from_model_range(x: Tensor) -> Tensor:
    """Model output in [-1, 1] -> images in [0, 1] (float32, clamped)."""
    return ((x.float() + 1) / 2).clamp(0, 1)


def check_model_square(x: Tensor, size: int, model: str) -> None:
    """Refuse a batch that did not come from `to_model_square(..., size)`."""
    if x.ndim != 4 or tuple(x.shape[1:]) != (3, size, size):
        raise TokError(f"{model}: expected images (B, 3, {size}, {size}) in [-1, 1], got {tuple(x.shape)}: call preprocess() first")


def write_image(image: Tensor, path: str | os.PathLike) -> Path:
    """Write a (3, H, W) float image in [0, 1] atomically; the format follows the file suffix."""
    path = Path(path)
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"expected an image (3, H, W), got {tuple(image.shape)}")
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise TokError(f"{path}: unsupported image suffix {path.suffix!r}; use one of {', '.join(IMAGE_EXTENSIONS)}")
    array = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    if array.shape[2] == 1:
        array = array[..., 0]
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format=Image.registered_extensions()[path.suffix.lower()])
    return path


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Supported image files directly in `folder`, sorted; a TokError when there are none."""
    return list_files(folder, IMAGE_EXTENSIONS, "images")
