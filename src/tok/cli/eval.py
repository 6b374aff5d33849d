"""`tok eval`: evaluation runs from the command line (a thin layer over `tok.eval`)."""

from __future__ import annotations

from pathlib import Path

import click

from ..core import TokError
from .options import cpu_bf16_option, cpu_int8_option, cpu_winograd_encoder_option


@click.group("eval", invoke_without_command=True)
@click.option("-m", "--model", "model_name", help="Model name or alias (see `tok models`).")
@click.option("--data", type=click.Path(path_type=Path), help="Folder of media (images, audio clips or videos) to evaluate on.")
@click.option("--metrics", help="Comma list. Images: psnr,ssim,lpips,rfid,pfid,kid,is,codebook (default psnr,ssim,codebook); "
              "audio: pesq,stoi,estoi,mel,sisdr,utmos,codebook (default stoi,mel,sisdr,codebook); video: psnr,ssim,fvd,codebook (default psnr,ssim,codebook); shape: chamfer,fscore,iou,codebook (default all).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Run folder (resumes when it exists).")
@click.option("--weights", type=click.Path(path_type=Path), help="Model weights instead of the zoo's.")
@click.option("-n", "--tokens", "num_tokens", type=int, help="Tokens per image (FlexTok: 1..256, flextok-small 1..64; default all).")
@click.option("-b", "--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N images (sorted by name).")
@click.option("--steps", type=int, help="Decoder steps (FlexTok).")
@click.option("--guidance", type=float, help="Classifier-free guidance scale (FlexTok).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the decoder's noise.")
@click.option("--device", help="torch device (default: cuda if available).")
@cpu_bf16_option
@cpu_int8_option
@cpu_winograd_encoder_option
@click.option("--compile", "compile_networks", is_flag=True, help="torch.compile the model's networks first (pays off on long runs).")
@click.option("--inception-weights", type=click.Path(path_type=Path), help="torch-fidelity Inception weights file (FID/KID/IS).")
@click.option("--lpips-weights", type=click.Path(path_type=Path), help="torchvision backbone file for LPIPS.")
@click.option("--i3d-weights", type=click.Path(path_type=Path), help="TorchScript I3D file for FVD (i3d_torchscript.pt).")
@click.option("--utmos-weights", "utmos_weights", type=click.Path(path_type=Path), help="UTMOS22 strong checkpoint (audio runs).")
@click.option("--lpips-net", type=click.Choice(["alex", "vgg", "squeeze"]), default="alex", show_default=True)
@click.option("--pfid-alpha", type=float, default=0.5, show_default=True, help="pFID: fraction of tokens perturbed.")
@click.option("--pfid-delta", type=int, default=10, show_default=True, help="pFID: number of nearest codes to choose from.")
@click.pass_context
def eval_command(ctx, model_name, data, metrics, out_dir, weights, num_tokens, batch_size, limit, steps, guidance, seed, device, cpu_bf16, cpu_int8, cpu_winograd_encoder,
                 compile_networks, inception_weights, lpips_weights, i3d_weights, utmos_weights, lpips_net, pfid_alpha, pfid_delta) -> None:
    """Evaluate a model on a folder: reconstructions, RUN/metrics.json and RUN/report.html.

    `tok eval compare RUN1 RUN2 ...` prints runs side by side."""
    if ctx.invoked_subcommand is not None:
        return
    missing = [flag for flag, value in (("--model", model_name), ("--data", data), ("--out", out_dir)) if value is None]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)}")
    from ..eval import evaluate

    decode = {k: v for k, v in {"steps": steps, "guidance": guidance, "seed": seed}.items() if v is not None}
    metric_weights = {"inception": inception_weights, "lpips": lpips_weights, "lpips_net": lpips_net, "i3d": i3d_weights, "utmos": utmos_weights, "device": device}
    summary = evaluate(
        model_name, data, metrics, out=out_dir, weights=weights, device=device, batch_size=batch_size, num_tokens=num_tokens, limit=limit,
        decode_opts=decode, metric_weights=metric_weights, pfid_alpha=pfid_alpha, pfid_delta=pfid_delta, pfid_seed=seed, cpu_bf16=cpu_bf16, cpu_int8=cpu_int8,
        cpu_winograd_encoder=cpu_winograd_encoder, compile_networks=compile_networks,
        progress=True,
    )
    for name, m in summary["metrics"].items():
        click.echo(f"{name:<10} {m['value']:.4f}" if m.get("value") is not None else f"{name:<10} -")
    click.echo(f"wrote {out_dir / 'metrics.json'} and {out_dir / 'report.html'}")


@eval_command.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
def compare(runs: tuple[Path, ...]) -> None:
    """Print the metrics of several runs side by side."""
    from ..eval import compare_table

    if not runs:
        raise TokError("name at least one run folder")
    click.echo(compare_table(list(runs)))


@eval_command.command("fid")
@click.argument("samples", type=click.Path(path_type=Path))
@click.argument("reference", type=click.Path(path_type=Path))
@click.option("--inception-weights", type=click.Path(path_type=Path), help="torch-fidelity Inception weights file.")
@click.option("--kid", "with_kid", is_flag=True, help="Also KID (torch-fidelity defaults).")
@click.option("--layer", type=click.Choice(["2048", "768", "192", "64"]), default="2048", show_default=True, help="Inception layer; only 2048 (pool3) gives the published FID.")
@click.option("-b", "--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--device", help="torch device (default: cuda if available).")
def fid_command(samples: Path, reference: Path, inception_weights, with_kid, layer, batch_size, device) -> None:
    """FID of a folder of SAMPLES against a REFERENCE folder or .npz statistics (gFID; rFID when
    SAMPLES are reconstructions of REFERENCE)."""
    from ..metrics import fid as fidlib

    opts = {"weights": inception_weights, "device": device, "batch_size": batch_size, "layer": layer}
    click.echo(f"fid {fidlib.gfid(samples, reference, **opts):.6f}")
    if with_kid:
        mean, std = fidlib.kid(samples, reference, **opts)
        click.echo(f"kid {mean:.6f} ± {std:.6f}")


@eval_command.command("stats")
@click.argument("images", type=click.Path(path_type=Path))
@click.argument("output", type=click.Path(path_type=Path))
@click.option("--inception-weights", type=click.Path(path_type=Path), help="torch-fidelity Inception weights file.")
@click.option("-b", "--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--layer", type=click.Choice(["2048", "768", "192", "64"]), default="2048", show_default=True, help="Inception layer; only 2048 (pool3) gives the published FID.")
@click.option("--device", help="torch device (default: cuda if available).")
def stats_command(images: Path, output: Path, inception_weights, batch_size, layer, device) -> None:
    """Save FID statistics (mu, sigma) of a folder of IMAGES to OUTPUT.npz, for later gFID."""
    from ..metrics import fid as fidlib

    click.echo(str(fidlib.save_statistics(images, output, weights=inception_weights, device=device, batch_size=batch_size, layers=(layer,))))


@eval_command.command("audio")
@click.argument("reference", type=click.Path(path_type=Path))
@click.argument("reconstruction", type=click.Path(path_type=Path))
@click.option("--metrics", default="pesq,stoi,mel,sisdr", show_default=True, help="Comma list of: pesq,stoi,estoi,mel,sisdr,utmos,utmos_ref.")
@click.option("--utmos-weights", type=click.Path(path_type=Path), help="UTMOS22 strong checkpoint (SpeechMOS .pt or UTMOS-demo .ckpt).")
@click.option("--out", "output", type=click.Path(path_type=Path), help="Also write the results to this JSON file (atomically).")
def audio_command(reference: Path, reconstruction: Path, metrics: str, utmos_weights, output) -> None:
    """Audio metrics of the clips in RECONSTRUCTION against same-named clips in REFERENCE."""
    from ..eval.audio import evaluate_audio
    from ..eval.run import write_json

    names = [m.strip() for m in metrics.split(",") if m.strip()]
    result = evaluate_audio(reference, reconstruction, names, utmos_weights)
    for name, m in result["metrics"].items():
        click.echo(f"{name:<10} {m['value']:.4f}  ({m['count']} clips)")
    if output is not None:
        write_json(result, output)
