"""FlexTok training recipe: stage 0 (the VAE), then stage 1 (encoder + FSQ + flow decoder).

Stage 0 trains diffusers' AutoencoderKL with L1 + LPIPS + KL (+ hinge GAN) on random crops
(the VAE is fully convolutional), then measures the latent mean and standard deviation so the
flow decoder sees unit-variance latents. Stage 1 freezes the VAE, encodes augmented views of
every image once, and trains the rectified-flow objective with nested dropout and CFG dropout.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import TensorDataset
from tqdm.auto import tqdm

from ..core import TokError
from ..core.weights import WeightSource, save_tok_checkpoint
from ..tokenizers.flextok import FlexTok, load_weights
from .data import ImageFolder
from .losses import (
    LPIPSLoss,
    PatchDiscriminator,
    VAELossWeights,
    hinge_discriminator_loss,
    hinge_generator_loss,
    kl_divergence,
)
from .trainer import TrainConfig, Trainer

logger = logging.getLogger(__name__)


def train_vae(
    tokenizer: FlexTok, data: str | os.PathLike, config: TrainConfig, weights: VAELossWeights, crop: int = 128, *, fresh: bool = True
) -> None:
    """Stage 0 on random `crop` x `crop` crops of the images resized to the model's resolution.

    `fresh=False` continues from the VAE's current weights (no re-initialisation).
    """
    size = tokenizer.config.image_size
    dataset = ImageFolder(data, resize=size, crop=min(crop, size))
    vae = tokenizer.vae.vae
    if fresh and weights.init_logvar is not None:
        # Start the posterior narrow: at the default init (logvar ~ 0) the sampled latent is
        # mostly unit noise and the decoder learns nothing until logvar drifts down.
        with torch.no_grad():
            vae.quant_conv.bias[vae.config.latent_channels :].fill_(weights.init_logvar)
    perceptual = LPIPSLoss() if weights.lpips > 0 else None

    def loss_fn(model: nn.Module, images: Tensor, step: int) -> dict[str, Tensor]:
        recon, mean, logvar = model(images)
        losses = {"l1": F.l1_loss(recon, images), "kl": kl_divergence(mean, logvar)}
        total = weights.l1 * losses["l1"] + weights.kl * losses["kl"]
        if weights.l2:
            losses["l2"] = F.mse_loss(recon, images)
            total = total + weights.l2 * losses["l2"]
        if perceptual is not None:
            losses["lpips"] = perceptual(images, recon)
            total = total + weights.lpips * losses["lpips"]
        if discriminator is not None and step >= weights.disc_start:
            losses["gan"] = hinge_generator_loss(discriminator(recon))
            total = total + weights.gan * losses["gan"]
        losses["loss"] = total
        return losses

    def disc_loss_fn(disc: nn.Module, model: nn.Module, images: Tensor, step: int) -> dict[str, Tensor]:
        with torch.no_grad():
            recon = model(images)[0]
        return {"disc_loss": hinge_discriminator_loss(disc(images), disc(recon.detach()))}

    discriminator = PatchDiscriminator() if weights.gan > 0 else None
    trainer = Trainer(
        replace(config, disc_start=weights.disc_start),
        _VAEObjective(vae),
        dataset,
        loss_fn,
        discriminator=discriminator,
        disc_loss_fn=disc_loss_fn if discriminator is not None else None,
    )
    trainer.fit()
    trainer.final_model(use_ema=True)


@torch.no_grad()
def set_latent_statistics(tokenizer: FlexTok, dataset: ImageFolder, batch_size: int = 16) -> None:
    """Set the VAE's shift and scale so the training latents have zero mean and unit variance."""
    tokenizer.set_latent_scaling(1.0, 0.0)
    latents = encode_views(tokenizer, dataset_images(dataset), batch_size)
    mean, std = latents.mean().item(), latents.std().item()
    tokenizer.set_latent_scaling(1.0 / std, mean)
    logger.info("latent statistics: mean %.4f std %.4f", mean, std)


def dataset_images(dataset: ImageFolder) -> Tensor:
    """One crop of every image of `dataset`, back as uint8 (N, 3, S, S) (its images are uint8)."""
    return torch.stack([((dataset[i] + 1) * 127.5).round().to(torch.uint8) for i in range(len(dataset))])


def augmented_views(data: str | os.PathLike, size: int, views: int) -> Tensor:
    """`views` random crops of every image, uint8 (views x images, 3, size, size): view i is taken
    after resizing the shorter side to a size between `size` and 1.25 `size`, flipped at random."""
    resizes = torch.linspace(size, int(size * 1.25), views).round().int().tolist()
    return torch.cat([dataset_images(ImageFolder(data, resize=resize, crop=size)) for resize in resizes])


@torch.no_grad()
def encode_views(tokenizer: FlexTok, views: Tensor, batch_size: int = 16) -> Tensor:
    """Scaled VAE latents of uint8 views (N, 3, S, S): (N, C, h, w)."""
    tokenizer.eval()
    latents = []
    for part in tqdm(views.split(batch_size), desc="encode latents"):
        latents.append(tokenizer.vae.encode(part.to(tokenizer.device).float() / 127.5 - 1).cpu())
    return torch.cat(latents)


def train_tokenizer(tokenizer: FlexTok, data: str | os.PathLike, config: TrainConfig, views: int = 8,
                    readout_lr_scale: float = 1.0, full_keep_prob: float = 0.0) -> None:
    """Stage 1: the VAE is frozen; views are random crops at a random scale between the
    model resolution and 1.25x, flipped at random (`augmented_views`).

    `readout_lr_scale` multiplies the learning rate of the encoder's read-out to FSQ
    (`enc_to_latents`), as muP scales an output layer's: at the full rate the read-out grows
    until FSQ's tanh bound saturates (flextok-small after 4 250 steps at 8e-4: pre-FSQ |z|
    median 2.2, 76 % of digits at a level's extreme), where its gradient vanishes and each
    digit carries about one bit.

    `full_keep_prob`: share of samples that keep all registers (nested dropout still draws the
    rest), for recipes that care most about the full-length decode."""
    dataset = TensorDataset(encode_views(tokenizer, augmented_views(data, tokenizer.config.image_size, views)))
    tokenizer.vae.requires_grad_(False)

    def loss_fn(model: nn.Module, batch: list[Tensor], step: int) -> dict[str, Tensor]:
        losses = model(batch[0])
        return {"loss": losses.losses["flow"], **losses.losses}

    trained = {name: p for name, p in tokenizer.named_parameters() if p.requires_grad and not name.startswith("vae.")}
    readout = [p for name, p in trained.items() if ".enc_to_latents." in name]
    rest = [p for name, p in trained.items() if ".enc_to_latents." not in name]
    groups = [{"params": rest}, {"params": readout, "lr": config.lr * readout_lr_scale}]
    trainer = Trainer(config, _FlowObjective(tokenizer, full_keep_prob), dataset, loss_fn, parameters=groups)
    trainer.fit()
    trainer.final_model(use_ema=True)


def tune_vae_decoder(tokenizer: FlexTok, data: str | os.PathLike, config: TrainConfig, views: int = 2,
                     full_keep_prob: float = 0.0) -> None:
    """Stage 2 (optional): fine-tune the VAE decoder for pixel MSE on what it is given at
    inference, the flow decoder's latents decoded with the model's default steps from random
    noise and a random prefix of the tokens. Everything else stays frozen.

    The flow decoder's one-step output is a conditional mean, smoother than any real latent; a
    decoder trained only on real latents renders it worse than it could (flextok-small: see
    the README). The VAE encoder is untouched, so the tokens of an image do not change."""
    cfg = tokenizer.config
    images = augmented_views(data, cfg.image_size, views)
    with torch.no_grad():  # the encoder is frozen: each view's FSQ codes are computed once
        codes = torch.cat([tokenizer.encode_latents(part)[0] for part in encode_views(tokenizer, images).split(16)])
    dataset = TensorDataset(images, codes)
    tokenizer.requires_grad_(False)
    vae = tokenizer.vae.vae
    for module in (vae.post_quant_conv, vae.decoder):
        module.requires_grad_(True)

    def loss_fn(model: nn.Module, batch: list[Tensor], step: int) -> dict[str, Tensor]:
        images, codes = batch
        batch_size, device = len(codes), codes.device
        with torch.no_grad():
            keep_k = tokenizer.sample_keep_k(batch_size, device, full_keep_prob)
            noise = torch.randn(batch_size, cfg.vae.latent_channels, cfg.latent_size, cfg.latent_size, device=device)
            predicted = tokenizer.sample_latents(codes, keep_k, noise, cfg.decode_steps, 1.0, False)
        mse = F.mse_loss(model(predicted.float()).float(), images.float() / 127.5 - 1)
        # PSNR over [0, 1] pixels: the [-1, 1] range quadruples the squared error.
        return {"loss": mse, "psnr": 10 * torch.log10(4 / mse.detach())}

    trainer = Trainer(config, _VAEDecoder(tokenizer.vae), dataset, loss_fn)
    trainer.fit()
    trainer.final_model(use_ema=True)


def keep_registers(tokenizer: FlexTok, num_registers: int) -> FlexTok:
    """A copy of `tokenizer` with only its first `num_registers` registers, as a start for a
    shorter model. The causal register mask lets register i see registers 0..i only, so the
    encoder's first ids do not change; the decoder no longer sees the dropped slots' mask
    tokens, so its output moves a little until it is tuned again."""
    n = tokenizer.config.num_registers
    if not 1 <= num_registers <= n:
        raise TokError(f"can keep 1..{n} registers, not {num_registers}")
    shorter = FlexTok(replace(tokenizer.config, num_registers=num_registers)).to(tokenizer.device)
    sliced = {
        "encoder.module_dict.enc_register_module.registers": lambda w: w[:num_registers],
        "decoder.module_dict.dec_registers_posemb_module.posembs": lambda w: w[..., :num_registers],
    }
    state = {k: sliced[k](v) if k in sliced else v for k, v in tokenizer.state_dict().items()}
    shorter.load_state_dict(state)
    return shorter


class _FlowObjective(nn.Module):
    """Routes the flow loss through `forward`, which DDP needs to synchronise gradients."""

    def __init__(self, tokenizer: FlexTok, full_keep_prob: float = 0.0):
        super().__init__()
        self.tokenizer = tokenizer
        self.full_keep_prob = full_keep_prob

    def forward(self, latents: Tensor):
        keep_k = self.tokenizer.sample_keep_k(len(latents), latents.device, self.full_keep_prob)
        return self.tokenizer.flow_loss(latents, keep_k)


class _VAEDecoder(nn.Module):
    """The VAE's decode (scaled latents -> images) through `forward`."""

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae

    def forward(self, latents: Tensor) -> Tensor:
        return self.vae.decode(latents)


class _VAEObjective(nn.Module):
    """AutoencoderKL's training pass through `forward`: (reconstruction from a posterior sample, mean, logvar)."""

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        posterior = self.vae.encode(images).latent_dist
        return self.vae.decode(posterior.sample()).sample, posterior.mean, posterior.logvar


def save_checkpoint(tokenizer: FlexTok, path: str | os.PathLike, dtype: torch.dtype = torch.float16) -> Path:
    """Write the whole model (official key layout) as safetensors, with its config in the metadata."""
    return save_tok_checkpoint(tokenizer, path, "flextok", tokenizer.config.to_dict(), dtype)


def run(
    tokenizer: FlexTok,
    data: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    stage: str = "all",
    vae_steps: int = 2000,
    steps: int = 5000,
    batch_size: int = 16,
    vae_batch_size: int = 8,
    lr: float = 8e-4,
    vae_lr: float = 1e-3,
    vae_crop: int = 64,
    vae_full_steps: int = 0,
    mixed_precision: str = "auto",
    loss_weights: VAELossWeights | None = None,
    views: int = 8,
    save_every: int = 250,
    readout_lr_scale: float = 1.0,
    max_seconds: float | None = None,
    lr_decay: str = "constant",
    full_keep_prob: float = 0.0,
    decoder_steps: int = 0,
    decoder_lr: float = 1e-4,
    decoder_batch_size: int = 4,
    decoder_views: int = 2,
) -> Path:
    """Train FlexTok stage by stage into `out_dir`; every stage resumes where it stopped.

    Stage 0 trains the VAE on `vae_crop` crops for `vae_steps`, then (if `vae_full_steps`) at
    the full resolution with half the batch and a third of the learning rate: GroupNorm
    statistics of small crops differ from those of whole images (measured on flextok-small:
    23.8 dB on 64-pixel tiles but 19.6 dB on whole 256-pixel images before this phase).
    Writes `out_dir/vae.safetensors` after stage 0 and `out_dir/model.safetensors` after stage 1.
    With `decoder_steps` (or `stage="decoder"`, which starts from that file), stage 2 then tunes
    the VAE decoder on the flow decoder's outputs (`tune_vae_decoder`) and rewrites the file.
    """
    out_dir = Path(out_dir)
    vae_file, model_file = out_dir / "vae.safetensors", out_dir / "model.safetensors"
    if stage in ("all", "vae") and not vae_file.exists():
        config = TrainConfig(
            str(out_dir / "vae"), steps=vae_steps, batch_size=vae_batch_size, lr=vae_lr, warmup_steps=50,
            save_every=save_every, ema_decay=0.999, mixed_precision=mixed_precision,
        )
        weights = loss_weights or VAELossWeights()
        size = tokenizer.config.image_size
        train_vae(tokenizer, data, config, weights, crop=vae_crop)
        if vae_full_steps:
            full = replace(config, out_dir=str(out_dir / "vae-full"), steps=vae_full_steps, batch_size=max(1, vae_batch_size // 2), lr=vae_lr / 3, warmup_steps=20)
            train_vae(tokenizer, data, full, weights, crop=size, fresh=False)
        set_latent_statistics(tokenizer, ImageFolder(data, resize=size, crop=size, random_crop=False, flip=False))
        save_checkpoint(tokenizer, vae_file)
    if stage == "vae":
        return vae_file
    if stage in ("all", "tokenizer"):
        if vae_file.exists():
            load_weights(tokenizer, WeightSource("explicit", vae_file))
        config = TrainConfig(
            str(out_dir / "tokenizer"), steps=steps, batch_size=batch_size, lr=lr, warmup_steps=100,
            save_every=save_every, ema_decay=0.999, mixed_precision=mixed_precision, max_seconds=max_seconds,
            lr_decay=lr_decay,
        )
        train_tokenizer(tokenizer, data, config, views=views, readout_lr_scale=readout_lr_scale, full_keep_prob=full_keep_prob)
        save_checkpoint(tokenizer, model_file)
    if stage == "decoder" or (stage == "all" and decoder_steps):
        if stage == "decoder":
            if not model_file.exists():
                raise TokError(f"{model_file}: stage 'decoder' tunes a trained tokenizer; run the tokenizer stage first")
            load_weights(tokenizer, WeightSource("explicit", model_file))
        config = TrainConfig(
            str(out_dir / "decoder"), steps=decoder_steps or 500, batch_size=decoder_batch_size, lr=decoder_lr,
            warmup_steps=20, save_every=save_every, ema_decay=0.99, mixed_precision=mixed_precision,
            max_seconds=max_seconds, lr_decay=lr_decay,
        )
        tune_vae_decoder(tokenizer, data, config, views=decoder_views, full_keep_prob=full_keep_prob)
        save_checkpoint(tokenizer, model_file)
    return model_file
