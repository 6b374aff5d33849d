"""OmniTokenizer training recipe: progressive image -> joint image+video -> KL fine-tune.

Stage 1 trains on images only. Stage 2 inflates the tubelet embedding from the first-frame
patch embedding and alternates image and video batches step by step (`force_alternation`).
Stage 3 (optional) turns the VQ model into the VAE: everything is kept except `pre_vq_conv`,
which is re-created with twice the channels (mean and log-variance), and a KL term replaces
the commitment loss. Losses as in the official code: L1 x 4, LPIPS x 4 (when its backbone is
on the machine), hinge GAN with a 2D PatchGAN on images and a 3D PatchGAN on clips, GAN feature
matching, commitment (VQ) or KL x 1e-6 (VAE).

Video data: real clips (folders of frames) plus camera motion made from photos: pans across and
zooms into a photo, rendered with bilinear resampling.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from ..core.weights import save_tok_checkpoint
from ..core import TokError
from ..core.media import IMAGE_EXTENSIONS, list_images, read_image, resize_shorter_side
from ..tokenizers.omnitokenizer import OmniTokenizer
from .losses import (
    LPIPSLoss,
    PatchDiscriminator,
    PatchDiscriminator3D,
    discriminator_features,
    feature_matching_loss,
    hinge_discriminator_loss,
)
from .trainer import TrainConfig, Trainer

logger = logging.getLogger(__name__)


@dataclass
class OmniLossWeights:
    """Generator loss weights (official defaults: l1 4, lpips 4, feature matching 4, stage-1 image
    GAN 0.01, stage-2 video GAN 0.01, KL 1e-6). Feature matching is scaled by the modality's GAN weight."""

    l1: float = 4.0
    lpips: float = 4.0
    image_gan: float = 0.01
    video_gan: float = 0.01
    feature_matching: float = 4.0
    commitment: float = 1.0
    kl: float = 1e-6
    disc_start: int = 0


# -- data ---------------------------------------------------------------------------------------


def _frame_folders(root: Path) -> list[Path]:
    return sorted({p.parent for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS})


def _load_photos(root: Path, size: int) -> list[Tensor]:
    folders = sorted({p.parent for p in root.rglob("*") if p.is_file()} | {root})
    photos = []
    for folder in folders:
        try:
            files = list_images(folder)
        except TokError:
            continue
        photos += [(resize_shorter_side(read_image(p)[0], size) * 255).round().to(torch.uint8) for p in files]
    if not photos:
        raise TokError(f"{root}: no photos found for training")
    return photos


def _load_clips(root: Path, size: int, min_frames: int) -> list[Tensor]:
    clips = []
    for folder in _frame_folders(root):
        files = list_images(folder)
        if len(files) >= min_frames:
            frames = torch.stack([read_image(p)[0] for p in files])
            clips.append((resize_shorter_side(frames, size) * 255).round().to(torch.uint8))
    return clips


def camera_motion(photo: Tensor, frames: int, size: int, rng: random.Random) -> Tensor:
    """A synthetic clip (3, frames, size, size) in [0, 1]: a pan, a zoom in or a zoom out over `photo`.

    Crop boxes move linearly from a start box to an end box inside the photo; each frame is
    resampled bilinearly (align_corners=False) with one affine grid per frame.
    """
    _, height, width = photo.shape
    short = min(height, width)
    kind = rng.choice(("pan", "zoom_in", "zoom_out"))
    scales = (1.0, 1.0) if kind == "pan" else (1.0, rng.uniform(0.6, 0.85))
    if kind == "zoom_out":
        scales = scales[::-1]
    boxes = []
    for scale in scales:
        side = short * scale
        boxes.append((side, rng.uniform(0, width - side), rng.uniform(0, height - side)))
    t = torch.linspace(0, 1, frames).view(-1, 1)
    (s0, x0, y0), (s1, x1, y1) = boxes
    side, left, top = s0 + (s1 - s0) * t, x0 + (x1 - x0) * t, y0 + (y1 - y0) * t
    # Normalised affine: output [-1, 1] -> input box centre +- half the side.
    theta = torch.zeros(frames, 2, 3)
    theta[:, 0, 0] = (side / width).squeeze(1)
    theta[:, 1, 1] = (side / height).squeeze(1)
    theta[:, 0, 2] = ((left + side / 2) / width * 2 - 1).squeeze(1)
    theta[:, 1, 2] = ((top + side / 2) / height * 2 - 1).squeeze(1)
    grid = F.affine_grid(theta, (frames, 3, size, size), align_corners=False)
    source = photo.float().div(255).expand(frames, -1, -1, -1)
    clip = F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return clip.clamp(0, 1).permute(1, 0, 2, 3)


class JointData(Dataset):
    """Items {"image": (3, 1, S, S), "video": (3, T, S, S)} in [-0.5, 0.5] with random crops and flips.

    Images: random S x S crops of photos resized to shorter side S. Videos: with probability
    `motion_fraction` a camera-motion clip over a random photo, else a random window of T frames
    of a real clip (random crop). Decoded once, kept as uint8.
    """

    def __init__(self, photos: str | os.PathLike, videos: str | os.PathLike | None, size: int, frames: int, *, motion_fraction: float = 0.5, length: int = 1_000_000, seed: int = 0):
        self.size, self.frames, self.length = size, frames, length
        self.photos = _load_photos(Path(photos), size)
        self.clips = _load_clips(Path(videos), size, frames) if videos is not None else []
        self.motion_fraction = motion_fraction if self.clips else 1.0
        self.rng = random.Random(seed)
        logger.info("training data: %d photos, %d clips", len(self.photos), len(self.clips))

    def __len__(self) -> int:
        return self.length

    def _crop(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        top, left = self.rng.randint(0, height - self.size), self.rng.randint(0, width - self.size)
        return x[..., top : top + self.size, left : left + self.size]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        image = self._crop(self.rng.choice(self.photos)).float().div(255)[:, None]
        if self.rng.random() < self.motion_fraction:
            video = camera_motion(self.rng.choice(self.photos), self.frames, self.size, self.rng)
        else:
            clip = self.rng.choice(self.clips)
            start = self.rng.randint(0, clip.shape[0] - self.frames)
            video = self._crop(clip[start : start + self.frames]).float().div(255).permute(1, 0, 2, 3)
        if self.rng.random() < 0.5:
            image = image.flip(-1)
        if self.rng.random() < 0.5:
            video = video.flip(-1)
        return {"image": image - 0.5, "video": video - 0.5}


# -- stages -------------------------------------------------------------------------------------


@torch.no_grad()
def inflate_video_embedding(model: OmniTokenizer) -> None:
    """Stage 1 -> 2 (`--init_vgen average`): the tubelet embedding starts as the first-frame one
    averaged over the temporal patch, so a still clip embeds like its first frame."""
    cfg = model.cfg
    pt, p, c = cfg.temporal_patch_size, cfg.patch_size, cfg.image_channels
    first, video = model.encoder.to_patch_emb_first_frame, model.encoder.to_patch_emb
    tile = lambda t: t.view(*t.shape[:-1], c, 1, p, p).expand(*t.shape[:-1], c, pt, p, p).reshape(*t.shape[:-1], -1)
    video[1].weight.copy_(tile(first[1].weight))
    video[1].bias.copy_(tile(first[1].bias))
    video[2].weight.copy_(tile(first[2].weight) / pt)
    video[2].bias.copy_(first[2].bias)
    video[3].load_state_dict(first[3].state_dict())


def to_vae(model: OmniTokenizer) -> OmniTokenizer:
    """Stage 2 -> 3: the same network with a Gaussian bottleneck; only `pre_vq_conv` is new."""
    vae = OmniTokenizer(replace(model.cfg, use_vae=True))
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("pre_vq_conv.")}
    missing, unexpected = vae.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith("pre_vq_conv.") for k in missing), (missing, unexpected)
    with torch.no_grad():  # start with a narrow posterior, as a KL fine-tune of a VQ model should
        vae.pre_vq_conv[1].bias[model.cfg.codebook_dim :].fill_(-6.0)
    vae.codebook.need_init = False
    return vae


class Discriminators(nn.Module):
    """The 2D (`image`) and 3D (`video`) PatchGANs, trained together by one optimizer."""

    def __init__(self):
        super().__init__()
        self.image = PatchDiscriminator()
        self.video = PatchDiscriminator3D()

    def pick(self, modality: str) -> nn.Module:
        return self.image if modality == "image" else self.video


def _as_input(x: Tensor, modality: str) -> Tensor:
    return x[:, :, 0] if modality == "image" else x  # the 2D discriminator sees (B, 3, H, W)


class OutOfTime(Exception):
    """Raised inside a step when a stage's wall-clock budget is spent."""


def train_stage(
    model: OmniTokenizer, dataset: Dataset, config: TrainConfig, weights: OmniLossWeights, *, joint: bool,
    video_batch: int | None = None, deadline: float | None = None,
) -> OmniTokenizer:
    """One stage on the foundation trainer; `joint` alternates image (even steps) and video (odd)
    batches. `video_batch` uses only that many clips of each batch (clips cost more than images);
    `deadline` (time.time()) ends the stage early, keeping the EMA weights reached so far."""
    perceptual = LPIPSLoss() if weights.lpips > 0 else None
    use_gan = weights.image_gan > 0 or (joint and weights.video_gan > 0)
    discriminators = Discriminators() if use_gan else None

    def modality_of(step: int) -> str:
        return "video" if joint and step % 2 else "image"

    def pick(batch: dict[str, Tensor], modality: str) -> Tensor:
        return batch[modality][:video_batch] if modality == "video" and video_batch else batch[modality]

    def loss_fn(net: nn.Module, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        if deadline is not None and time.time() > deadline:
            raise OutOfTime
        modality = modality_of(step)
        x = pick(batch, modality)
        out = net(x)
        recon = out.recon
        losses = {"l1": F.l1_loss(recon, x)}
        total = weights.l1 * losses["l1"]
        if "commitment" in out.losses:
            losses["commitment"] = out.losses["commitment"]
            total = total + weights.commitment * losses["commitment"]
        if "kl" in out.losses:
            losses["kl"] = out.losses["kl"]
            total = total + weights.kl * losses["kl"]
        if perceptual is not None:  # one random frame per clip, inputs in [-1, 1]
            frame = random.randrange(x.shape[2])
            losses["lpips"] = perceptual(x[:, :, frame] * 2, recon[:, :, frame] * 2)
            total = total + weights.lpips * losses["lpips"]
        gan_weight = weights.image_gan if modality == "image" else weights.video_gan
        if discriminators is not None and gan_weight > 0 and step >= weights.disc_start:
            disc = discriminators.pick(modality)
            fake_logits, fake_features = discriminator_features(disc, _as_input(recon, modality))
            with torch.no_grad():
                _, real_features = discriminator_features(disc, _as_input(x, modality))
            losses[f"{modality}_gan"] = -fake_logits.mean()
            losses[f"{modality}_fm"] = feature_matching_loss(real_features, fake_features)
            total = total + gan_weight * (losses[f"{modality}_gan"] + weights.feature_matching * losses[f"{modality}_fm"])
        losses["loss"] = total
        return {**losses, f"{modality}_l1": losses["l1"].detach()}

    def disc_loss_fn(disc: nn.Module, net: nn.Module, batch: dict[str, Tensor], step: int) -> dict[str, Tensor]:
        modality = modality_of(step)
        x = pick(batch, modality)
        with torch.no_grad():
            recon = net(x).recon
        d = disc.pick(modality)
        return {"disc_loss": hinge_discriminator_loss(d(_as_input(x, modality)), d(_as_input(recon, modality)))}

    trainer = Trainer(
        replace(config, disc_start=weights.disc_start), model, dataset, loss_fn,
        discriminator=discriminators, disc_loss_fn=disc_loss_fn if discriminators is not None else None,
    )
    try:
        trainer.fit()
    except OutOfTime:
        logger.info("stage ended by its time budget at step %d", trainer.counter.step)
    return trainer.final_model(use_ema=True)


def save_checkpoint(model: OmniTokenizer, path: str | os.PathLike, dtype: torch.dtype = torch.float16) -> Path:
    """The whole model in the official key layout as safetensors (floats in `dtype`), config in the metadata."""
    return save_tok_checkpoint(model, path, "omnitokenizer", asdict(model.cfg), dtype)


# -- evaluation ---------------------------------------------------------------------------------


def psnr(reference: np.ndarray, reconstruction: np.ndarray) -> float:
    mse = float(np.mean((reference.astype(np.float64) - reconstruction.astype(np.float64)) ** 2))
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def ssim(reference: np.ndarray, reconstruction: np.ndarray) -> float:
    """SSIM of (H, W, 3) images in [0, 1] (Gaussian window, sigma 1.5, as in Wang et al. 2004)."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(reference, reconstruction, channel_axis=2, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False))


@torch.inference_mode()
def evaluate(model: OmniTokenizer, photos: str | os.PathLike, videos: str | os.PathLike | None) -> dict[str, float]:
    """Held-out reconstruction quality at the model resolution (resize shorter side, center crop).

    Images: PSNR, SSIM (and LPIPS when its backbone is here). Videos (every frame of each clip,
    encoded clip by clip): per-frame PSNR and SSIM, and temporal consistency = mean absolute
    difference between the frame differences of the input and of the reconstruction.
    """
    model.eval()
    results: dict[str, list[float]] = {"image_psnr": [], "image_ssim": []}
    lpips_model = None
    try:
        lpips_model = LPIPSLoss()
        results["image_lpips"] = []
    except TokError:
        logger.warning("LPIPS backbone not on this machine: image LPIPS not measured")
    for path in list_images(photos):
        x = model.preprocess(read_image(path)[0])
        y = model.decode(model.encode(x)).clamp(-0.5, 0.5)
        ref = (x[0, :, 0] + 0.5).permute(1, 2, 0).cpu().numpy()
        rec = (y[0, :, 0] + 0.5).permute(1, 2, 0).cpu().numpy()
        results["image_psnr"].append(psnr(ref, rec))
        results["image_ssim"].append(ssim(ref, rec))
        if lpips_model is not None:
            results["image_lpips"].append(float(lpips_model(x[:, :, 0] * 2, y[:, :, 0] * 2)))
    if videos is not None:
        results.update(video_psnr=[], video_ssim=[], temporal_error=[])
        for folder in _frame_folders(Path(videos)):
            frames = torch.stack([read_image(p)[0] for p in list_images(folder)])
            x = model.preprocess(frames)
            y = model.decode(model.encode(x))[:, :, : x.shape[2]].clamp(-0.5, 0.5)
            ref = (x[0] + 0.5).permute(1, 2, 3, 0).cpu().numpy()
            rec = (y[0] + 0.5).permute(1, 2, 3, 0).cpu().numpy()
            results["video_psnr"] += [psnr(a, b) for a, b in zip(ref, rec)]
            results["video_ssim"] += [ssim(a, b) for a, b in zip(ref, rec)]
            results["temporal_error"].append(float(np.abs(np.diff(ref, axis=0) - np.diff(rec, axis=0)).mean()))
    return {k: float(np.mean(v)) for k, v in results.items() if v}


# -- the whole recipe -----------------------------------------------------------------------


def run(
    model: OmniTokenizer,
    photos: str | os.PathLike,
    videos: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    *,
    image_steps: int = 500,
    joint_steps: int = 1000,
    kl_steps: int = 0,
    batch_size: int = 8,
    video_batch: int = 4,
    lr: float = 1e-3,
    joint_lr: float = 5e-4,
    minutes: float | None = None,
    weights: OmniLossWeights | None = None,
) -> OmniTokenizer:
    """Stage 1 (images), stage 2 (alternating images and clips), optional stage 3 (KL -> VAE).

    `minutes` caps the wall-clock time: stage 1 gets a third of it, stage 2 the rest (or half
    with a KL stage). Writes `omnitokenizer.safetensors` (and `omnitokenizer-vae.safetensors`).
    """
    weights = weights or OmniLossWeights()
    out_dir = Path(out_dir)
    start = time.time()
    budget = minutes * 60 if minutes else None
    shares = (1 / 3, 1.0) if kl_steps == 0 else (1 / 3, 5 / 6, 1.0)
    deadline = (lambda share: start + budget * share) if budget else (lambda share: None)
    cfg = model.cfg
    dataset = JointData(photos, videos, cfg.resolution, cfg.clip_frames)
    common = {"batch_size": batch_size, "save_every": 250, "warmup_steps": 50, "betas": (0.5, 0.9), "ema_decay": 0.99, "log_every": 10, "grad_clip": 1.0}
    model.init_weights()
    model = train_stage(model, dataset, TrainConfig(str(out_dir / "stage1"), steps=image_steps, lr=lr, **common), replace(weights, video_gan=0.0), joint=False, deadline=deadline(shares[0]))
    save_checkpoint(model, out_dir / "stage1.safetensors")
    inflate_video_embedding(model)
    model = train_stage(model, dataset, TrainConfig(str(out_dir / "stage2"), steps=joint_steps, lr=joint_lr, **common), replace(weights, image_gan=0.0), joint=True, video_batch=video_batch, deadline=deadline(shares[1]))
    save_checkpoint(model, out_dir / "omnitokenizer.safetensors")
    if kl_steps:
        vae = to_vae(model)
        vae = train_stage(vae, dataset, TrainConfig(str(out_dir / "stage3"), steps=kl_steps, lr=joint_lr, **common), replace(weights, image_gan=0.0), joint=True, video_batch=video_batch, deadline=deadline(shares[2]))
        save_checkpoint(vae, out_dir / "omnitokenizer-vae.safetensors")
    logger.info("training took %.1f min", (time.time() - start) / 60)
    return model


def main() -> None:
    import argparse

    from ..tokenizers.omnitokenizer import preset

    parser = argparse.ArgumentParser(description="Train an OmniTokenizer with the progressive recipe (CPU or GPU).")
    parser.add_argument("--photos", required=True, help="folder of training photos (searched recursively)")
    parser.add_argument("--videos", help="folder of clip folders (frames as images)")
    parser.add_argument("--out", default="runs/omnitokenizer")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--image-steps", type=int, default=500)
    parser.add_argument("--joint-steps", type=int, default=1000)
    parser.add_argument("--kl-steps", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--video-batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--joint-lr", type=float, default=5e-4)
    parser.add_argument("--lpips", type=float, default=4.0, help="LPIPS weight (0: off; needs the VGG backbone file)")
    parser.add_argument("--image-gan", type=float, default=0.01)
    parser.add_argument("--video-gan", type=float, default=0.01)
    parser.add_argument("--minutes", type=float, help="wall-clock cap for the whole run")
    parser.add_argument("--eval-photos", help="held-out photos to report on")
    parser.add_argument("--eval-videos", help="held-out clip folders to report on")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    weights = OmniLossWeights(lpips=args.lpips, image_gan=args.image_gan, video_gan=args.video_gan)
    model = OmniTokenizer(preset(args.preset))
    model = run(
        model, args.photos, args.videos, args.out, image_steps=args.image_steps, joint_steps=args.joint_steps,
        kl_steps=args.kl_steps, batch_size=args.batch_size, video_batch=args.video_batch, lr=args.lr,
        joint_lr=args.joint_lr, minutes=args.minutes, weights=weights,
    )
    if args.eval_photos:
        metrics = evaluate(model, args.eval_photos, args.eval_videos)
        (Path(args.out) / "metrics.json").write_text(json.dumps(metrics, indent=2))
        print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
