import numpy as np
import pytest
import torch
from PIL import Image

from tok.core import TokError
from tok.core.media import list_images, read_image, write_image


def test_reads_real_photo(photo):
    image, info = read_image(photo)
    assert image.shape == (3, info.height, info.width) and image.dtype == torch.float32
    assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0.05
    assert info.format == "JPEG" and info.mode == "RGB"


def test_pixels_are_exactly_the_bytes_over_255(tmp_path, photo):
    # Token parity with the official preprocessing needs bit-equal pixels: float32(byte) / 255,
    # whatever path computes it. Every byte value occurs in the first image.
    every_byte = np.arange(256 * 24, dtype=np.uint8).reshape(48, 128)
    Image.fromarray(np.dstack([every_byte, every_byte[::-1], every_byte.T.reshape(48, 128)])).save(tmp_path / "bytes.png")
    for path in (tmp_path / "bytes.png", photo):
        with Image.open(path) as img:
            expected = torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32) / np.float32(255)).permute(2, 0, 1)
        image, _ = read_image(path)
        assert torch.equal(image, expected)


@pytest.mark.parametrize("suffix", [".png", ".webp", ".bmp", ".tiff", ".jpg"])
def test_formats(tmp_path, suffix):
    array = (np.random.rand(12, 20, 3) * 255).astype(np.uint8)
    Image.fromarray(array).save(tmp_path / f"x{suffix}")
    image, info = read_image(tmp_path / f"x{suffix}")
    assert image.shape == (3, 12, 20)
    if suffix in (".png", ".bmp", ".tiff"):  # lossless
        assert torch.allclose(image, torch.from_numpy(array).permute(2, 0, 1) / 255.0)


def test_grayscale_rgba_and_16_bit(tmp_path):
    Image.fromarray(np.full((4, 5), 128, np.uint8), "L").save(tmp_path / "gray.png")
    gray, _ = read_image(tmp_path / "gray.png")
    assert gray.shape == (3, 4, 5) and torch.allclose(gray, torch.full_like(gray, 128 / 255))

    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255  # red, fully transparent -> white background
    Image.fromarray(rgba, "RGBA").save(tmp_path / "clear.png")
    clear, info = read_image(tmp_path / "clear.png")
    assert info.mode == "RGBA" and torch.allclose(clear, torch.ones_like(clear))

    deep = np.full((3, 3), 65535 // 4, np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    image, info = read_image(tmp_path / "deep.png")
    assert info.mode.startswith("I") and torch.allclose(image, torch.full_like(image, (65535 // 4) / 65535), atol=1e-6)


def test_exif_orientation_is_applied(tmp_path):
    array = np.zeros((10, 30, 3), np.uint8)  # wide image
    img = Image.fromarray(array)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    img.save(tmp_path / "rotated.jpg", exif=exif)
    image, info = read_image(tmp_path / "rotated.jpg")
    assert image.shape == (3, 30, 10) and (info.width, info.height) == (10, 30)


def test_bad_images(tmp_path, photo):
    with pytest.raises(TokError, match="nope.png: no such file"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(TokError, match=r"empty.png: empty file \(0 bytes\)"):
        read_image(tmp_path / "empty.png")
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(TokError, match="text.png: not an image file"):
        read_image(tmp_path / "text.png")
    data = photo.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(TokError, match="cut.jpg: corrupt or truncated image"):
        read_image(tmp_path / "cut.jpg")
    with pytest.raises(TokError, match="is a folder"):
        read_image(tmp_path)


def test_write_image_round_trip_and_atomicity(tmp_path):
    image = torch.rand(3, 8, 9)
    path = write_image(image, tmp_path / "out.png")
    back, _ = read_image(path)
    assert torch.allclose(back, (image * 255).round() / 255, atol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    with pytest.raises(TokError, match="unsupported image suffix"):
        write_image(image, tmp_path / "out.xyz")


def test_list_images(tmp_path):
    with pytest.raises(TokError, match="no images found"):
        list_images(tmp_path)
    (tmp_path / "b.PNG").write_bytes(b"x")
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.PNG"]
