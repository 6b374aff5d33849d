"""Images and videos through one OmniTokenizer from the CLI, offline (random-weight checkpoint)."""

import json
import shutil

import pytest
import torch
from click.testing import CliRunner

from tok import api
from tok.cli.main import main
from tok.core import TokenLayout, Tokens, TokError
from tok.core.media import read_image, read_video, write_video


@pytest.fixture
def run():
    runner = CliRunner()
    return lambda *args: runner.invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def clip(tmp_path):
    """A 13-frame 80x96 clip at 12 fps: tiny's 9-frame clips give 3 + 2 latent frames (4 frames padded to 5)."""
    frames = torch.rand(1, 3, 10, 12).expand(13, -1, -1, -1)
    frames = torch.nn.functional.interpolate(frames, size=(80, 96), mode="bilinear") * torch.linspace(0.5, 1, 13).view(-1, 1, 1, 1)
    return write_video(frames, tmp_path / "clip.mp4", fps=12)


def test_image_and_video_through_one_model(run, tmp_path, photo, clip, tiny_ckpt):
    shutil.copy(photo, tmp_path / "photo.jpg")
    weights = ("--model", "omnitokenizer-tiny", "--weights", tiny_ckpt)
    assert run("encode", tmp_path / "photo.jpg", *weights).exit_code == 0
    assert run("encode", clip, *weights).exit_code == 0
    image_info = json.loads(run("info", tmp_path / "photo.tok", "--json").output)
    clip_info = json.loads(run("info", tmp_path / "clip.tok", "--json").output)
    assert image_info["layout"] == "grid" and image_info["stream_shapes"] == [[1, 1, 8, 8]]
    assert clip_info["stream_shapes"] == [[1, 3 + 2, 8, 8]]
    assert clip_info["sources"][0]["num_frames"] == 13 and clip_info["sources"][0]["fps"] == 12

    result = run("decode", tmp_path / "photo.tok", tmp_path / "clip.tok", "--weights", tiny_ckpt)
    assert result.exit_code == 0, result.output
    _image, info = read_image(tmp_path / "photo.png")
    assert (info.width, info.height) == (64, 64)
    video, vinfo = read_video(tmp_path / "clip.mp4")  # the decoded clip replaced the input name
    assert video.shape == (13, 3, 64, 64) and vinfo.fps == 12


def test_a_folder_mixing_images_and_videos(run, tmp_path, photo, clip, tiny_ckpt):
    shutil.copy(photo, tmp_path / "photo.jpg")
    out = tmp_path / "tokens"
    result = run("encode", tmp_path, "--model", "omnitokenizer-tiny", "--weights", tiny_ckpt, "--out-dir", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["clip.tok", "photo.tok"]


def test_gif_output_and_image_refusal_for_clips(tmp_path, clip, tiny_ckpt):
    model = api.load("omnitokenizer-tiny", tiny_ckpt, "cpu")
    tok = api.encode_file(clip, model, tmp_path / "c.tok")
    gif = api.decode_file(tok, tmp_path / "c.gif", model=model)
    assert read_video(gif)[0].shape[0] == 13
    with pytest.raises(Exception, match="13-frame clip cannot be written as an image"):
        api.decode_file(tok, tmp_path / "c.png", model=model)
    assert not (tmp_path / "c.png").exists()


def test_bad_inputs_exit_1_without_output(run, tmp_path, tiny_ckpt):
    weights = ("--model", "omnitokenizer-tiny", "--weights", tiny_ckpt)
    one = write_video(torch.rand(1, 3, 16, 16), tmp_path / "one.mp4", fps=5)
    result = run("encode", one, *weights)
    assert result.exit_code == 1 and "one.mp4: 1 frame, but a clip of at least 2 frames is needed" in result.output
    junk = tmp_path / "junk.webm"
    junk.write_bytes(b"\x1a\x45\xdf\xa3 not really a webm" * 10)
    result = run("encode", junk, *weights)
    assert result.exit_code == 1 and "junk.webm: cannot decode video" in result.output
    assert not list(tmp_path.glob("*.tok"))
    # Tokens of another model (here an audio codec's layout) are refused by name, and also
    # when handed to the model directly.
    audio = Tokens([torch.zeros(1, 2, 30, dtype=torch.long)], TokenLayout("codebooks", (1024,), (("q", "t"),)), "some-audio-codec")
    audio.save(tmp_path / "speech.tok")
    result = run("decode", tmp_path / "speech.tok", "--model", "omnitokenizer-tiny", "--weights", tiny_ckpt)
    assert result.exit_code == 1 and "made by model 'some-audio-codec'" in result.output
    model = api.load("omnitokenizer-tiny", tiny_ckpt, "cpu")
    with pytest.raises(TokError, match="speech.tok were made by model 'some-audio-codec'"):
        api.decode_file(tmp_path / "speech.tok", model=model)
    assert sorted(p.name for p in tmp_path.glob("speech.*")) == ["speech.tok"]


def test_vae_checkpoints_are_not_token_models_in_the_cli(run, tmp_path, photo):
    listing = run("models").output
    assert "omnitokenizer-imagenet-k600-vae" in listing and "not a token model" in listing


def test_small_and_non_square_inputs_follow_the_resize_rule(tmp_path, tiny_ckpt):
    """Shorter side to the model resolution (up or down), then the center square."""
    from tok.core.media import write_image

    model = api.load("omnitokenizer-tiny", tiny_ckpt, "cpu")
    small = write_image(torch.rand(3, 20, 30), tmp_path / "small.png")
    wide = write_video(torch.rand(3, 3, 40, 200), tmp_path / "wide.mp4", fps=4)
    for path, shape in ((small, (1, 1, 8, 8)), (wide, (1, 2, 8, 8))):
        item, source = model.read_media(path)
        assert item.shape[-2:] == (64, 64)
        assert model.encode_items([item], [source]).streams[0].shape == shape


def test_the_alias_prefers_an_official_release_when_its_weights_are_here(monkeypatch):
    from tok.core import zoo

    api.list_models()
    cached = {"omnitokenizer-imagenet-mit"}
    assert zoo.resolve_name("omnitokenizer", lambda card: card.name in cached) == "omnitokenizer-imagenet-mit"
    assert zoo.resolve_name("omnitokenizer", lambda card: card.name == "omnitokenizer-small") == "omnitokenizer-small"
