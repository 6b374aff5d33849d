"""Random-weight OmniTokenizer checkpoints in the official Lightning layout, made locally."""

import argparse
from pathlib import Path

import torch

from tok.tokenizers.omnitokenizer import OmniTokenizer


def official_hparams(config, **changes) -> argparse.Namespace:
    """The training Namespace as the releases saved it, with the "casual" spelling."""
    values = {
        "embedding_dim": config.dim, "heads": config.heads, "dim_head": config.dim_head, "patch_size": config.patch_size,
        "temporal_patch_size": config.temporal_patch_size, "enc_block": config.enc_block, "dec_block": config.dec_block,
        "temporal_depth": config.temporal_depth, "twod_window_size": config.window_size, "spatial_pos": config.spatial_pos,
        "n_codes": config.n_codes, "codebook_dim": config.codebook_dim, "l2_code": True, "resolution": config.resolution,
        "casual_in_temporal_transformer": True, "casual_in_peg": True, "disc_channels": 64, "norm_type": "batch",
    }
    if config.use_vae:
        values["use_vae"] = True
    values.update(changes)
    return argparse.Namespace(**values)


def random_model(config, seed: int = 1) -> OmniTokenizer:
    torch.manual_seed(seed)
    model = OmniTokenizer(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)  # q/k scales, norms and biases away from their init
        model.codebook.embeddings.copy_(torch.nn.functional.normalize(torch.randn_like(model.codebook.embeddings), dim=-1))
        model.codebook.z_avg.copy_(model.codebook.embeddings)
        model.codebook.N.fill_(1.0)
    model.codebook.need_init = False
    return model.eval()


def write_official_checkpoint(model: OmniTokenizer, path: Path, extra: dict | None = None, **hparam_changes) -> Path:
    """A Lightning .ckpt: model keys + discriminator and LPIPS tensors + hyper-parameters."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["image_discriminator.model0.0.weight"] = torch.randn(64, 3, 4, 4)
    state["video_discriminator.model0.0.weight"] = torch.randn(64, 3, 4, 4, 4)
    state["perceptual_model.net.slice1.0.weight"] = torch.randn(64, 3, 3, 3)
    state.update(extra or {})
    checkpoint = {
        "epoch": 3, "global_step": 1000, "pytorch-lightning_version": "1.5.4", "state_dict": state,
        "hyper_parameters": official_hparams(model.cfg, **hparam_changes),
    }
    torch.save(checkpoint, path)
    return path


