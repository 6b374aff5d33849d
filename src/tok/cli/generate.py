"""`tok train-ar` and `tok generate`: AR models over token datasets (`tok encode DIR --dataset OUT`)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from tqdm.auto import tqdm


def encode_dataset_command(inputs, tokenizer, dataset: Path, num_tokens, batch_size: int, shard_size: int, workers: int = 1) -> None:
    """The `--dataset` mode of `tok encode`: one folder -> one resumable token dataset."""
    from ..generators.data import class_folders, encode_dataset

    if len(inputs) != 1 or not Path(inputs[0]).is_dir():
        raise click.UsageError("--dataset takes exactly one input folder (class labels come from its sub-folders)")
    total = len(class_folders(Path(inputs[0]), tokenizer.modality)[0])
    bar = tqdm(total=total, desc=f"encode dataset ({tokenizer.name})", unit="item")
    try:
        manifest = encode_dataset(inputs[0], tokenizer, dataset, num_tokens=num_tokens, batch_size=batch_size, shard_size=shard_size, workers=workers, progress=bar.update)
    finally:
        bar.close()
    classes = f", {len(manifest.classes)} classes" if manifest.classes else ", unconditional"
    click.echo(f"{dataset}: {manifest.num_items} items in {len(manifest.shards)} shards ({manifest.describe()}{classes})")


@click.command("train-ar")
@click.option("--tokens", "tokens", required=True, type=click.Path(path_type=Path), help="Token dataset from `tok encode DIR --dataset`.")
@click.option("--val-tokens", type=click.Path(path_type=Path), help="Validation token dataset (same tokenizer).")
@click.option("--preset", "preset_name", default="small", show_default=True, help="Model size: tiny, small, medium, llamagen-b/l/xl.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("runs/ar"), show_default=True, help="Run folder; an existing run resumes.")
@click.option("--steps", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("-b", "--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--lr", type=float, default=3e-4, show_default=True)
@click.option("--warmup", type=click.IntRange(min=0), default=100, show_default=True)
@click.option("--eval-every", type=click.IntRange(min=1), default=200, show_default=True, help="Steps between validation losses and checkpoints.")
@click.option("--max-minutes", type=float, help="Stop (and write the model) after this wall-clock time.")
@click.option("--codebook-pattern", type=click.Choice(["delay", "flat"]), default="delay", show_default=True)
@click.option("--class-dropout", type=float, default=0.1, show_default=True, help="Label dropout for classifier-free guidance.")
@click.option("--dropout", type=float, default=0.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def train_ar_command(tokens, val_tokens, preset_name, out_dir, steps, batch_size, lr, warmup, eval_every, max_minutes, codebook_pattern, class_dropout, dropout, seed) -> None:
    """Train an AR transformer on a token dataset (resumes a run in --out).

    Multi-GPU: `accelerate launch -m tok.cli.main train-ar ...`.
    """
    from ..generators.train import train_ar

    path = train_ar(
        tokens, out_dir, preset_name, val_tokens=val_tokens, steps=steps, batch_size=batch_size, lr=lr, warmup_steps=warmup,
        eval_every=eval_every, max_minutes=max_minutes, codebook_pattern=codebook_pattern, class_dropout=class_dropout, dropout=dropout, seed=seed,
    )
    val_log = Path(out_dir) / "val.jsonl"
    if val_log.exists():
        rows = [json.loads(line) for line in val_log.read_text().splitlines()]
        click.echo(f"validation loss {rows[0]['val_loss']:.3f} -> {rows[-1]['val_loss']:.3f} nats (uniform {rows[-1]['uniform']:.3f}) at step {rows[-1]['step']}")
    click.echo(f"wrote {path}")


@click.command("generate")
@click.option("--ar", "ar_path", required=True, type=click.Path(path_type=Path), help="AR checkpoint (ar.safetensors or its run folder).")
@click.option("--class", "label", help="Class name or index (default: every class in turn; none for unconditional models).")
@click.option("-n", "--num", type=click.IntRange(min=1), default=4, show_default=True, help="Number of samples.")
@click.option("--cfg", type=float, default=1.0, show_default=True, help="Classifier-free guidance: u + cfg * (c - u); 1 = off.")
@click.option("--cfg-schedule", type=click.Choice(["constant", "linear"]), default="constant", show_default=True, help="linear: VAR's ramp over scales, weight 1 + cfg * g / (G - 1).")
@click.option("--temperature", type=float, default=1.0, show_default=True, help="0 = greedy.")
@click.option("--top-k", type=int, default=0, show_default=True, help="0 = off.")
@click.option("--top-p", type=float, default=1.0, show_default=True, help="In (0, 1]; 1 = off.")
@click.option("--tokens", "num_tokens", type=int, help="Stop after this many tokens (FlexTok sequences).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-b", "--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--no-cache", is_flag=True, help="Recompute the whole prefix every step (reference path).")
@click.option("--weights", type=click.Path(path_type=Path), help="Tokenizer weights instead of the zoo's.")
@click.option("--steps", "decode_steps", type=int, help="Tokenizer decode steps (FlexTok flow steps).")
@click.option("--device", help="torch device (default: cuda if available).")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Folder for the .tok files and decoded media.")
def generate_command(ar_path, label, num, cfg, cfg_schedule, temperature, top_k, top_p, num_tokens, seed, batch_size, no_cache, weights, decode_steps, device, out_dir) -> None:
    """Sample tokens from an AR model and decode them with the tokenizer named in its dataset."""
    from ..generators.generate import generate

    opts = {"steps": decode_steps} if decode_steps is not None else {}
    _, _, written = generate(
        ar_path, num, label=label, cfg=cfg, cfg_schedule=cfg_schedule, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed, num_tokens=num_tokens,
        batch_size=batch_size, use_cache=not no_cache, weights=weights, device=device, out_dir=out_dir, **opts,
    )
    media = [p for p in written if p.suffix != ".tok"]
    click.echo(f"wrote {len(media)} samples to {out_dir}")

