"""The `tok` command: a thin layer over the Python API.

Exit codes: 0 success; 1 user error (one line `Error: ...` naming the file and the problem, no
traceback); 2 usage error (click's own). Any other exception is a bug and shows its traceback.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import click
from tqdm.auto import tqdm

from ..core import TokError
from .options import cpu_bf16_option, cpu_int8_option, cpu_winograd_encoder_option


class TokGroup(click.Group):
    """Turns TokError (and its relatives raised from user input) into click's exit-code-1 errors."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except TokError as e:
            raise click.ClickException(str(e)) from None


@click.group(cls=TokGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug).")
@click.version_option(package_name="tok-toolkit")
def main(verbose: int) -> None:
    """Discrete tokenizers and codecs: encode media to tokens and back."""
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)], format="%(levelname)s %(name)s: %(message)s")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def models(as_json: bool) -> None:
    """List the models in the zoo and whether their weights are on this machine."""
    from ..api import list_models
    from ..core import zoo
    from ..core.weights import weights_available

    rows = [{**card.summary(), "available": weights_available(card)} for card in list_models()]
    aliases = {name: list(candidates) for name, candidates in zoo.aliases().items()}
    if as_json:
        click.echo(json.dumps({"models": rows, "aliases": aliases}, indent=2))
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        mark = "*" if r["available"] else " "
        click.echo(f"{mark} {r['name']:<{width}}  {r['modality']:<6} {r['tokens']}")
    for alias, candidates in aliases.items():
        click.echo(f"  {alias:<{width}}  alias of the first available of: {', '.join(candidates)}")
    click.echo("(* weights available offline)")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(files: tuple[Path, ...], as_json: bool) -> None:
    """Describe .tok files: model, layout, vocabulary, shapes, source media."""
    from ..core import Tokens

    reports = []
    for path in files:
        tokens = Tokens.load(path)
        reports.append(
            {
                "file": str(path),
                "model": tokens.model,
                "weights_digest": tokens.weights_digest,
                "layout": tokens.layout.kind,
                "vocab_sizes": list(tokens.layout.vocab_sizes),
                "axes": [list(a) for a in tokens.layout.axes],
                "stream_shapes": [list(s) for s in tokens.shapes],
                "num_tokens": tokens.num_tokens,
                "bits": round(tokens.bits, 1),
                "sources": tokens.sources,
                "encoder_options": tokens.encoder_options,
            }
        )
    if as_json:
        click.echo(json.dumps(reports if len(reports) > 1 else reports[0], indent=2))
        return
    for r in reports:
        click.echo(f"{r['file']}: {r['model']}, {r['layout']} layout, {r['num_tokens']} tokens ({r['bits']:.0f} bits)")
        click.echo(f"  streams {r['stream_shapes']}, vocab {r['vocab_sizes']}, weights {r['weights_digest'] or 'unknown'}")
        if r["encoder_options"]:
            click.echo(f"  encoded with {', '.join(sorted(r['encoder_options']))} (opt-in paths; ids may differ from the default path's)")
        for source in r["sources"]:
            if source:
                desc = ", ".join(f"{k}={v}" for k, v in source.items() if k != "path")
                click.echo(f"  source {source.get('path', '?')}: {desc}")


def _outputs(inputs: list[Path], output: Path | None, out_dir: Path | None, suffix: str | list[str]) -> list[Path]:
    """Output paths: -o for one input, else each input's name with `suffix` (one, or one per input)."""
    from ..api import default_output

    if output is not None and out_dir is not None:
        raise click.UsageError("use either -o/--output or --out-dir, not both")
    if output is not None:
        if len(inputs) != 1:
            raise click.UsageError(f"-o/--output names one file but there are {len(inputs)} inputs; use --out-dir")
        return [output]
    suffixes = [suffix] * len(inputs) if isinstance(suffix, str) else suffix
    outputs = [default_output(p, s, out_dir) for p, s in zip(inputs, suffixes)]
    if len(set(outputs)) != len(outputs):
        raise TokError("two inputs would write the same output file; use --out-dir with distinct names")
    return outputs


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-m", "--model", "model_name", required=True, help="Model name or alias (see `tok models`).")
@click.option("--weights", type=click.Path(path_type=Path), help="Weights file or folder instead of the zoo's.")
@click.option("-n", "--tokens", "num_tokens", type=int, help="Tokens per item (FlexTok: 1..256, flextok-small 1..64; default all).")
@click.option("--scales", type=int, help="Keep only the first K scales (multi-scale models such as HieraTok; default all).")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Output .tok file (one input only).")
@click.option("--out-dir", type=click.Path(path_type=Path), help="Folder for the .tok files.")
@click.option("-b", "--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--device", help="torch device, e.g. cpu or cuda:0 (default: cuda if available).")
@click.option("--skip-existing", is_flag=True, help="Skip inputs whose .tok output already exists (resume a folder run).")
@click.option("--dataset", type=click.Path(path_type=Path), help="Write one token dataset (for `tok train-ar`) instead of .tok files; resumable.")
@click.option("--shard-size", type=click.IntRange(min=1), default=256, show_default=True, help="Items per dataset shard.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Shards encoded at once (--dataset).")
@click.option("--compile", "compile_networks", is_flag=True, help="torch.compile the model's networks first (pays off on many files).")
@cpu_bf16_option
@cpu_int8_option
@cpu_winograd_encoder_option
def encode(inputs, model_name, weights, num_tokens, scales, output, out_dir, batch_size, device, skip_existing, dataset, shard_size, workers,
           compile_networks, cpu_bf16, cpu_int8, cpu_winograd_encoder) -> None:
    """Encode media files (or every supported file in a folder) to .tok files.

    With --dataset OUT, encode one folder (class labels from its sub-folders) into a token dataset.
    """
    from ..api import check_options, encode_files, load, media_files

    tokenizer = load(model_name, weights, device)
    tokenizer.check_num_tokens(num_tokens)
    tokenizer.cpu_bf16, tokenizer.cpu_int8, tokenizer.cpu_winograd_encoder = cpu_bf16, cpu_int8, cpu_winograd_encoder
    if compile_networks:
        tokenizer.compile_networks()
    check_options(tokenizer.encode, {"scales": scales}, tokenizer.name)
    if dataset is not None:
        from .generate import encode_dataset_command

        return encode_dataset_command(inputs, tokenizer, dataset, num_tokens, batch_size, shard_size, workers)
    paths = media_files(list(inputs), tokenizer.modality)
    outputs = _outputs(paths, output, out_dir, ".tok")
    if skip_existing:
        for existing in (o for o in outputs if o.exists()):
            _check_same_encoding(existing, tokenizer)
        pairs = [(p, o) for p, o in zip(paths, outputs) if not o.exists()]
        paths, outputs = [p for p, _ in pairs], [o for _, o in pairs]
    progress = tqdm(total=len(paths), desc=f"encode ({tokenizer.name})", unit="file", disable=len(paths) < 2)
    for _, out in encode_files(tokenizer, paths, outputs, num_tokens=num_tokens, batch_size=batch_size, scales=scales):
        progress.update(1)
        if len(paths) < 2:
            click.echo(str(out))
    progress.close()
    if len(paths) >= 2:
        click.echo(f"wrote {len(paths)} .tok files with {tokenizer.name}")


def _check_same_encoding(path: Path, tokenizer) -> None:
    """A resumed folder run keeps an existing .tok only if this run would have made it the same
    way: same model, weights and encoder options (which can change ids)."""
    from ..core.tokens import read_header

    header = read_header(path)
    theirs = (header["model"], header.get("weights_digest", ""), header.get("encoder_options", {}))
    ours = (tokenizer.name, tokenizer.weights_digest, tokenizer.encoder_options)
    if theirs != ours:
        def describe(model, digest, options):
            return f"{model} (weights {digest or 'unknown'}, encoder options {options or 'default'})"
        raise TokError(f"{path}: made by {describe(*theirs)}, but this run encodes with {describe(*ours)}; "
                       "remove it or write to another folder")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Output media file (one input only).")
@click.option("--out-dir", type=click.Path(path_type=Path), help="Folder for the decoded files.")
@click.option("-m", "--model", "model_name", help="Model to decode with (default: the one named in each file).")
@click.option("--weights", type=click.Path(path_type=Path), help="Weights file or folder instead of the zoo's.")
@click.option("--steps", type=int, help="Flow steps (FlexTok; default from the model).")
@click.option("--guidance", type=float, help="Classifier-free guidance scale (FlexTok; 1 = off).")
@click.option("--seed", type=int, help="Seed of the decoder's initial noise (FlexTok; default 0).")
@click.option("--sampler", help="Flow sampler (FlexTok): euler (official, default), heun, dpm++ or unipc.")
@click.option("--scales", type=int, help="Decode only the first K scales (multi-scale models such as HieraTok).")
@click.option("--device", help="torch device (default: cuda if available).")
@click.option("--compile", "compile_networks", is_flag=True, help="torch.compile the model's networks first (pays off on many files).")
@cpu_bf16_option
@cpu_int8_option
def decode(files, output, out_dir, model_name, weights, steps, guidance, seed, sampler, scales, device, compile_networks, cpu_bf16, cpu_int8) -> None:
    """Decode .tok files back to media."""
    from ..api import decode_file, load
    from ..core.tokens import read_header

    # Reading the headers is cheap (decode_file reads and validates the whole file later).
    headers = [read_header(path) for path in files]
    names = [header["model"] for header in headers]
    for path, name in zip(files, names):
        if model_name is not None and model_name != name:
            raise TokError(f"{path}: tokens were made by model {name!r}, not {model_name!r}")
    loaded = {name: load(name, weights, device) for name in dict.fromkeys(names)}
    for tokenizer in loaded.values():
        tokenizer.cpu_bf16, tokenizer.cpu_int8 = cpu_bf16, cpu_int8
        if compile_networks:
            tokenizer.compile_networks()
    suffixes = [loaded[name].output_suffix((header.get("sources") or [None])[0]) for name, header in zip(names, headers)]
    outputs = _outputs(list(files), output, out_dir, suffixes)
    opts = {k: v for k, v in {"steps": steps, "guidance": guidance, "seed": seed, "sampler": sampler, "scales": scales}.items() if v is not None}
    for path, name, out in tqdm(list(zip(files, names, outputs)), desc="decode", unit="file", disable=len(files) < 2):
        click.echo(str(decode_file(path, out, model=loaded[name], **opts)))


@main.command()
@click.option("-m", "--model", "model_name", required=True, help="Model to train, e.g. flextok-small.")
@click.option("--data", required=True, type=click.Path(path_type=Path), help="Folder of training images.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("runs/train"), show_default=True)
@click.option("--stage", type=click.Choice(["all", "vae", "tokenizer", "decoder", "pretrain", "posttrain"]), default="all", show_default=True, help="FlexTok: vae/tokenizer/decoder; XY-Tokenizer: pretrain/posttrain.")
@click.option("--steps", type=click.IntRange(min=1), default=5000, show_default=True, help="Tokenizer steps.")
@click.option("--vae-steps", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("-b", "--batch-size", type=click.IntRange(min=1), default=16, show_default=True, help="Tokenizer batch size.")
@click.option("--vae-batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--vae-crop", type=click.IntRange(min=8), default=64, show_default=True, help="Square crop side for VAE training.")
@click.option("--vae-full-steps", type=click.IntRange(min=0), default=500, show_default=True, help="VAE steps on whole images after the crop phase.")
@click.option("--decoder-steps", type=click.IntRange(min=0), default=0, show_default=True, help="FlexTok: steps tuning the VAE decoder on the flow decoder's outputs after the tokenizer stage (0 = skip).")
@click.option("--lr", type=float, default=8e-4, show_default=True)
@click.option("--vae-lr", type=float, default=1e-3, show_default=True)
@click.option("--time-shift", type=float, help="Override the preset's training time shift (FlexTok; 1 = logit-normal).")
@click.option("--precision", type=click.Choice(["auto", "bf16", "no"]), default="auto", show_default=True, help="auto: bf16 on GPU, fp32 on CPU.")
@click.option("--lpips-weight", type=float, default=0.1, show_default=True, help="0 turns LPIPS off (needs torchvision VGG weights).")
@click.option("--gan-weight", type=float, default=0.0, show_default=True, help="Hinge GAN weight for the VAE (0 = off).")
@click.option("--l2-weight", type=float, default=1.0, show_default=True)
@click.option("--max-minutes", type=float, help="Wall-clock cap (audio codecs, HieraTok): stop and save after the step that crosses it.")
@click.option("--teacher", type=click.Path(exists=True, path_type=Path), help="XY-Tokenizer: Whisper encoder weights for the frozen semantic tower.")
def train(model_name, data, out_dir, stage, steps, vae_steps, batch_size, vae_batch_size, vae_crop, vae_full_steps, decoder_steps, lr, vae_lr, time_shift, precision, lpips_weight, gan_weight, l2_weight, max_minutes, teacher) -> None:
    """Train a tokenizer from scratch on a folder of media; resumes from OUT if it exists.

    Multi-GPU / multi-node: `accelerate launch -m tok.cli.main train ...`.
    """
    from ..api import list_models
    from ..core import zoo

    list_models()
    card = zoo.get_card(model_name)
    if card.family == "wavtokenizer":
        from ..training.wavtokenizer import train_from_cli

        click.echo(f"wrote {train_from_cli(card, data, out_dir, steps, batch_size, lr, precision, gan_weight, max_minutes)}")
        return
    if card.family == "hieratok":
        from ..training.hieratok import HieraTokLossWeights
        from ..training.hieratok import run as run_hieratok

        weights = HieraTokLossWeights(l1=1.0, l2=l2_weight, lpips=lpips_weight, gan=gan_weight, disc_start=steps // 2)
        max_seconds = max_minutes * 60 if max_minutes is not None else None
        path = run_hieratok(card.builder(card), data, out_dir, steps=steps, batch_size=batch_size, lr=lr, weights=weights, max_seconds=max_seconds, mixed_precision=precision)
        click.echo(f"wrote {path}")
        return
    if card.family == "xy_tokenizer":
        from ..training.xy_tokenizer import train_from_cli as train_xy

        path = train_xy(card, data, out_dir, stage=stage, steps=steps, batch_size=batch_size, lr=lr, precision=precision,
                        gan_weight=gan_weight, max_minutes=max_minutes, teacher=teacher)
        click.echo(f"wrote {path}")
        return
    if card.family != "flextok":
        raise TokError(f"training {card.family} models is not supported yet")
    from ..training.flextok import VAELossWeights, run

    weights = VAELossWeights(l2=l2_weight, lpips=lpips_weight, gan=gan_weight)
    if time_shift is not None:
        card = replace(card, config=replace(card.config, time_shift=time_shift))
    tokenizer = card.builder(card)
    path = run(
        tokenizer, data, out_dir, stage=stage, vae_steps=vae_steps, steps=steps, batch_size=batch_size,
        vae_batch_size=vae_batch_size, vae_crop=vae_crop, vae_full_steps=vae_full_steps, lr=lr, vae_lr=vae_lr, mixed_precision=precision, loss_weights=weights,
        decoder_steps=decoder_steps,
    )
    click.echo(f"wrote {path}")


from .eval import eval_command  # noqa: E402
from .generate import generate_command, train_ar_command  # noqa: E402

main.add_command(eval_command)
main.add_command(train_ar_command)
main.add_command(generate_command)

if __name__ == "__main__":
    main()
