import pytest

from tok.core import TokError
from tok.core.media import MEDIA_EXTENSIONS, list_media


def test_list_media_uses_the_modality_extensions(tmp_path):
    (tmp_path / "b.PNG").write_bytes(b"x")
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in list_media(tmp_path, "image")] == ["a.jpg", "b.PNG"]
    assert ".png" in MEDIA_EXTENSIONS["image"]


def test_list_media_errors(tmp_path):
    with pytest.raises(TokError, match="reading hologram files is not supported"):
        list_media(tmp_path, "hologram")
    with pytest.raises(TokError, match="no image files found"):
        list_media(tmp_path, "image")
    with pytest.raises(TokError, match="not a folder"):
        list_media(tmp_path / "missing", "image")
