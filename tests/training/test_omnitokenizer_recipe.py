"""The OmniTokenizer recipe: camera-motion clips, stage transitions, a joint GAN step, checkpoints."""

import random
from dataclasses import replace

import pytest
import torch

from tok.core.weights import WeightSource
from tok.tokenizers.omnitokenizer import OmniTokenizer, load_weights, preset
from tok.training.losses import PatchDiscriminator3D
from tok.training.omnitokenizer import (
    JointData,
    OmniLossWeights,
    camera_motion,
    evaluate,
    inflate_video_embedding,
    save_checkpoint,
    to_vae,
    train_stage,
)
from tok.training.trainer import TrainConfig


def test_camera_motion_pans_across_the_photo():
    photo = torch.arange(64, dtype=torch.float32).repeat(3, 32, 1).to(torch.uint8)  # brightness = column
    rng = random.Random(0)
    while True:
        clip = camera_motion(photo, 5, 16, rng)
        means = clip.mean(dim=(0, 2, 3))
        if abs(float(means[-1] - means[0])) > 5 / 255:  # a pan or zoom that moved sideways
            break
    assert clip.shape == (3, 5, 16, 16) and 0 <= float(clip.min()) and float(clip.max()) <= 1
    steps = means.diff()
    assert bool((steps > 0).all()) or bool((steps < 0).all())  # steady motion in one direction


def test_inflated_tubelet_embedding_sees_a_still_clip_like_its_first_frame():
    model = OmniTokenizer(preset("tiny"))
    model.init_weights()
    inflate_video_embedding(model)
    frame = torch.rand(1, 3, 1, 64, 64)
    still = frame.expand(-1, -1, 4, -1, -1)
    first = model.encoder.to_patch_emb_first_frame(frame)
    tubelet = model.encoder.to_patch_emb(still)
    torch.testing.assert_close(tubelet, first, atol=1e-5, rtol=1e-5)


def test_kl_stage_keeps_everything_but_the_bottleneck():
    model = OmniTokenizer(preset("tiny"))
    vae = to_vae(model)
    assert vae.cfg.use_vae and vae.pre_vq_conv[1].weight.shape == (16, 64)
    torch.testing.assert_close(vae.decoder.to_pixels[0].weight, model.decoder.to_pixels[0].weight)
    out = vae(torch.rand(1, 3, 5, 64, 64) - 0.5)
    assert "kl" in out.losses and out.recon.shape == (1, 3, 5, 64, 64)


def test_3d_discriminator_takes_short_clips():
    logits = PatchDiscriminator3D(width=8)(torch.rand(2, 3, 9, 64, 64))
    assert logits.ndim == 5 and logits.shape[:2] == (2, 1)


@pytest.mark.slow
def test_joint_stage_with_gans_then_checkpoint_round_trip(tmp_path, photo):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        (photos / f"p{i}.jpg").write_bytes(photo.read_bytes())
    data = JointData(photos, None, 64, 5)
    item = data[0]
    assert item["image"].shape == (3, 1, 64, 64) and item["video"].shape == (3, 5, 64, 64)
    model = OmniTokenizer(replace(preset("tiny"), clip_frames=5))
    model.init_weights()
    config = TrainConfig(str(tmp_path / "run"), steps=2, batch_size=2, lr=1e-3, warmup_steps=1, save_every=100, log_every=1)
    weights = OmniLossWeights(lpips=0.0, image_gan=0.1, video_gan=0.1)
    model = train_stage(model, data, config, weights, joint=True, video_batch=1)
    log = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert '"image_gan"' in log[0] and '"video_gan"' in log[1] and '"disc_loss"' in log[1]
    path = save_checkpoint(model, tmp_path / "omni.safetensors")
    loaded = OmniTokenizer(model.cfg)
    load_weights(loaded, WeightSource("explicit", path))
    assert not loaded.codebook.need_init
    x = torch.rand(1, 3, 5, 64, 64) - 0.5
    with torch.inference_mode():
        reference = model.half().float().eval().encode(x).streams[0]
        assert torch.equal(loaded.eval().encode(x).streams[0], reference)
    metrics = evaluate(loaded, photos, None)
    assert set(metrics) == {"image_psnr", "image_ssim"} and 0 < metrics["image_psnr"] < 60
