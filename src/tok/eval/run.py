"""Evaluation runs: reconstruct a dataset with a tokenizer, then measure it.

A run folder holds everything needed to resume and to audit the numbers:

    RUN/run.json          what is being evaluated (model, weights digest, dataset, options)
    RUN/tokens/<file>.tok the tokens of every item
    RUN/recon/<file>.png  every reconstruction (uint8 PNG, as the metrics see it); audio models
                          write <file>.wav at the original's rate and length, video models
                          <file>.npy (uint8 frames) plus a viewable .mp4/.png (see `media.py`)
    RUN/perturbed/…       pFID's reconstructions from perturbed tokens (when asked for)
    RUN/metrics.json      the results, written atomically at the end
    RUN/report.html       originals vs reconstructions, metric table, codebook-usage histogram

Phase 1 encodes and decodes in batches, writing each item's outputs atomically, and skips items
whose outputs exist, so an interrupted run resumes where it stopped. Phase 2 recomputes every
metric from the stored files (cheap next to decoding), so `metrics.json` always describes the
whole dataset. References are the model's own view of each original
(`postprocess(preprocess(image))`, e.g. FlexTok's 256×256 centre crop, not quantised);
reconstructions are the stored uint8 PNGs.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..core.errors import TokError
from ..core.io import atomic_path
from ..core.media import read_image, write_image
from ..core.media.read_ahead import read_ahead
from ..core.tokenizer import Tokenizer
from ..core.tokens import Tokens
from .media import AUDIO_RUN_METRICS, SHAPE_RUN_METRICS, VIDEO_RUN_METRICS

RUN_FORMAT = 1
IMAGE_METRICS = ("psnr", "ssim", "lpips", "rfid", "pfid", "kid", "is", "codebook")
DEFAULT_METRICS = ("psnr", "ssim", "codebook")
# Metrics an evaluation run offers per modality, and what it measures when none are named.
RUN_METRICS = {"image": IMAGE_METRICS, "audio": AUDIO_RUN_METRICS, "video": VIDEO_RUN_METRICS, "shape": SHAPE_RUN_METRICS}
MODALITY_DEFAULTS = {"image": DEFAULT_METRICS, "audio": ("stoi", "mel", "sisdr", "codebook"), "video": ("psnr", "ssim", "codebook"),
                     "shape": ("chamfer", "fscore", "iou", "codebook")}


def parse_metrics(metrics: str | list[str] | tuple[str, ...] | None, modality: str = "image") -> list[str]:
    if modality not in RUN_METRICS:
        raise TokError(f"evaluation runs support {', '.join(RUN_METRICS)} models; this is a {modality} model")
    if metrics is None:
        return list(MODALITY_DEFAULTS[modality])
    names = [m.strip().lower() for m in (metrics.split(",") if isinstance(metrics, str) else metrics) if m.strip()]
    unknown = [m for m in names if m not in RUN_METRICS[modality]]
    if unknown:
        raise TokError(f"unknown metric(s) {', '.join(unknown)} for {modality} models; choose from {', '.join(RUN_METRICS[modality])}")
    if not names:
        raise TokError("no metrics asked for")
    return list(dict.fromkeys(names))


def dataset_digest(files: list[Path]) -> str:
    """sha256 over every file's name and bytes, in order: the same images give the same digest.
    A folder of frames (one video clip) counts as its files in name order."""
    h = hashlib.sha256()
    for path in files:
        h.update(path.name.encode() + b"\0")
        for part in sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]:
            h.update(part.name.encode() + b"\0")
            with open(part, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()[:16]


def dataset_items(data: str | os.PathLike, modality: str) -> list[Path]:
    """The items of `data` for a run: its media files; for video models also its subfolders of
    frames (the corpus stores clips as CLIP/00.png ...), each one clip."""
    from ..api import media_files
    from ..core.media import IMAGE_EXTENSIONS, MEDIA_EXTENSIONS

    folder = Path(data)
    if modality != "video" or not folder.is_dir():
        return media_files([data], modality)
    items = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MEDIA_EXTENSIONS["video"]]
    items += [p for p in folder.iterdir() if p.is_dir() and any(f.suffix.lower() in IMAGE_EXTENSIONS for f in p.iterdir())]
    if not items:
        raise TokError(f"{folder}: no video files, images or folders of frames found")
    return sorted(items)


def write_json(data: dict[str, Any], path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def _output_name(path: Path) -> str:
    # The full file name keeps a.jpg and a.png apart.
    return path.name


class Run:
    """One evaluation run of `tokenizer` on `files`, stored in `folder`."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        files: list[Path],
        folder: Path,
        *,
        data: str,
        metrics: list[str],
        batch_size: int = 8,
        num_tokens: int | None = None,
        decode_opts: dict[str, Any] | None = None,
        pfid_alpha: float = 0.5,
        pfid_delta: int = 10,
        pfid_seed: int = 0,
        progress: bool = True,
    ):
        if tokenizer.modality not in RUN_METRICS:
            raise TokError(f"evaluation runs support {', '.join(RUN_METRICS)} models; {tokenizer.name!r} is a {tokenizer.modality} model")
        distribution = [m for m in metrics if m in ("rfid", "pfid", "kid", "is", "fvd")]
        if distribution and len(files) < 2:
            noun = "images" if tokenizer.modality == "image" else "clips"
            raise TokError(f"{', '.join(distribution)} need at least 2 {noun}, {data} gives {len(files)}")
        self.tokenizer, self.files, self.folder = tokenizer, files, Path(folder)
        self.metrics, self.batch_size, self.progress = metrics, batch_size, progress
        self.num_tokens = tokenizer.check_num_tokens(num_tokens) if num_tokens is not None else None
        self.decode_opts = dict(decode_opts or {})
        self.pfid = {"alpha": pfid_alpha, "delta": pfid_delta, "seed": pfid_seed}
        self.data = data
        self.digest = dataset_digest(files)

    # -- bookkeeping ---------------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        """What must not change between an interrupted run and its resumption."""
        return {
            "format_version": RUN_FORMAT,
            "model": self.tokenizer.name,
            "weights_digest": self.tokenizer.weights_digest,
            "dataset_digest": self.digest,
            "num_tokens": self.num_tokens,
            "decode": self.decode_opts,
            "cpu_bf16": self.tokenizer.cpu_bf16,
            "cpu_int8": self.tokenizer.cpu_int8,
            "cpu_winograd_encoder": self.tokenizer.cpu_winograd_encoder,
            "pfid": self.pfid if "pfid" in self.metrics else None,
        }

    def prepare(self) -> None:
        run_file = self.folder / "run.json"
        identity = self.identity()
        if run_file.exists():
            try:
                previous = json.loads(run_file.read_text())
            except json.JSONDecodeError as e:
                raise TokError(f"{run_file}: corrupt run description ({e})") from None
            previous.setdefault("cpu_bf16", False)  # runs written before the switches existed
            previous.setdefault("cpu_int8", False)
            previous.setdefault("cpu_winograd_encoder", False)
            changed = [k for k in identity if k != "pfid" and previous.get(k) != identity[k]]
            if previous.get("pfid") not in (None, identity["pfid"]) and identity["pfid"] is not None:
                changed.append("pfid")
            if changed:
                raise TokError(f"{self.folder}: holds a run with other {', '.join(changed)}; use another --out folder")
            identity["pfid"] = identity["pfid"] or previous.get("pfid")
        write_json(identity, run_file)

    def paths(self, path: Path) -> tuple[Path, Path, Path]:
        """(tokens, reconstruction the metrics read, pFID reconstruction) of one input."""
        name = _output_name(path)
        recon_suffix = {"image": ".png", "audio": ".wav", "video": ".npy", "shape": ".npy"}[self.tokenizer.modality]
        return self.folder / "tokens" / f"{name}.tok", self.folder / "recon" / f"{name}{recon_suffix}", self.folder / "perturbed" / f"{name}.png"

    # -- phase 1: reconstruct ------------------------------------------------------------------
    def read_outputs(self, path: Path) -> tuple[Tensor, Tensor, Tensor | None]:
        """(the model's input from the original, the stored reconstruction, the stored pFID
        reconstruction or None when pFID is not measured) of one image."""
        _, recon, perturbed = self.paths(path)
        pert = read_image(perturbed)[0] if "pfid" in self.metrics else None
        return self.tokenizer.read_media(path)[0], read_image(recon)[0], pert

    def decode(self, tokens: Tokens, chunk: list[Path]) -> Tensor:
        from ..api import decode_tokens

        out = decode_tokens(self.tokenizer, tokens, **self.decode_opts).float().cpu()
        bad = [p.name for p, img in zip(chunk, out) if not bool(torch.isfinite(img).all())]
        if bad:
            raise TokError(f"model {self.tokenizer.name!r} produced NaN or infinite values reconstructing {', '.join(bad)}")
        return out

    def reconstruct(self) -> int:
        """Encode/decode every item that has no outputs yet; returns how many were done now."""
        need_pfid = "pfid" in self.metrics
        todo = []
        for index, path in enumerate(self.files):
            tok_file, recon, perturbed = self.paths(path)
            if not (tok_file.exists() and recon.exists()) or (need_pfid and not perturbed.exists()):
                todo.append((index, path))
        bar = tqdm(total=len(self.files), initial=len(self.files) - len(todo), desc=f"eval {self.tokenizer.name}", unit="item", disable=not self.progress)
        opts = {"num_tokens": self.num_tokens} if self.num_tokens is not None else {}
        batches = [todo[start : start + self.batch_size] for start in range(0, len(todo), self.batch_size)]
        chunks = [[p for _, p in batch] for batch in batches]
        # The next batch's files are read while this one is encoded and decoded.
        for batch, chunk, read in zip(batches, chunks, read_ahead(self.tokenizer.read_media, chunks)):
            items, sources = (list(v) for v in zip(*read))
            if self.tokenizer.modality != "image":
                from .media import reconstruct_batch

                reconstruct_batch(self, chunk, items, sources, opts)
                bar.update(len(batch))
                continue
            x = torch.stack(items).to(self.tokenizer.device)
            tokens = self.tokenizer.encode(x, sources=sources, **opts)
            recon = self.decode(tokens, chunk)
            for i, path in enumerate(chunk):
                tok_file, recon_file, _ = self.paths(path)
                tokens[i].save(tok_file)
                write_image(recon[i], recon_file)
            if need_pfid:
                self.reconstruct_perturbed(tokens, batch)
            bar.update(len(batch))
        bar.close()
        return len(todo)

    def reconstruct_perturbed(self, tokens: Tokens, batch: list[tuple[int, Path]]) -> None:
        from ..metrics.perturb import perturb_tokens, quantizer_of

        quantizer = quantizer_of(self.tokenizer)
        # One generator per item, seeded by its index: the same tokens whatever the batching or resumption.
        items = [
            perturb_tokens(tokens[i], quantizer, self.pfid["alpha"], self.pfid["delta"], seed=self.pfid["seed"] * 1_000_003 + index)
            for i, (index, _) in enumerate(batch)
        ]
        chunk = [p for _, p in batch]
        images = self.decode(Tokens.cat(items), chunk)
        for image, path in zip(images, chunk):
            write_image(image, self.paths(path)[2])

    # -- phase 2: measure ----------------------------------------------------------------------
    def measure(self, metric_weights: dict[str, Any]) -> dict[str, Any]:
        from ..metrics import image as image_metrics
        from ..metrics.codebook import CodebookStats
        from ..metrics.fid import FID_LAYER, IS_LAYER, InceptionFeatures

        if self.tokenizer.modality == "audio":
            from .media import measure_audio

            return measure_audio(self, metric_weights)
        if self.tokenizer.modality == "video":
            from .media import measure_video

            return measure_video(self, metric_weights)
        if self.tokenizer.modality == "shape":
            from .media import measure_shape

            return measure_shape(self, metric_weights)
        wanted = set(self.metrics)
        per_image: dict[str, list[Tensor]] = {m: [] for m in ("psnr", "ssim", "lpips") if m in wanted}
        lpips_net = None
        if "lpips" in wanted:
            lpips_net = image_metrics.LPIPS(metric_weights.get("lpips_net", "alex"), metric_weights.get("lpips"), metric_weights.get("device"))
        # fid_layer: pool3 ("2048") unless a test or a quick look asks for a cheaper Inception layer.
        fid_layer = metric_weights.get("fid_layer", FID_LAYER)
        inception_layers = tuple(dict.fromkeys([fid_layer] * bool(wanted & {"rfid", "pfid", "kid"}) + [IS_LAYER] * ("is" in wanted)))
        feats = {}
        if inception_layers:
            device, path = metric_weights.get("device"), metric_weights.get("inception")
            feats["ref"] = InceptionFeatures((fid_layer,), path, device) if fid_layer in inception_layers else None
            feats["rec"] = InceptionFeatures(inception_layers, path, device)
            feats["pert"] = InceptionFeatures((fid_layer,), path, device) if "pfid" in wanted else None
        stats = CodebookStats()
        bar = tqdm(total=len(self.files), desc="metrics", unit="img", disable=not self.progress)
        chunks = [self.files[start : start + self.batch_size] for start in range(0, len(self.files), self.batch_size)]
        for chunk, read in zip(chunks, read_ahead(self.read_outputs, chunks)):
            inputs, recs, perts = zip(*read)
            ref = self.tokenizer.postprocess(torch.stack(inputs)).float().cpu()
            rec = torch.stack(recs)
            if "psnr" in per_image:
                per_image["psnr"].append(image_metrics.psnr_per_image(ref, rec))
            if "ssim" in per_image:
                per_image["ssim"].append(image_metrics.ssim_per_image(ref, rec))
            if lpips_net is not None:
                per_image["lpips"].append(lpips_net.per_image(ref, rec))
            if feats:
                if feats["ref"] is not None:
                    feats["ref"].update(ref)
                feats["rec"].update(rec)
                if feats["pert"] is not None:
                    feats["pert"].update(torch.stack(perts))
            if "codebook" in wanted:
                for p in chunk:
                    stats.update(Tokens.load(self.paths(p)[0]))
            bar.update(len(chunk))
        bar.close()
        return self.summarise(per_image, feats, stats, metric_weights)

    def summarise(self, per_image, feats, stats, metric_weights) -> dict[str, Any]:
        from ..core.weights import file_digest
        from ..metrics import fid as fidlib
        from ..metrics.weights import INCEPTION_FID, LPIPS_BACKBONES, resolve

        n = len(self.files)
        out: dict[str, Any] = {}
        image_settings = {"range": "[0, 1]", "channels": "RGB", "reference": "model view of the original, float", "reconstruction": "uint8 PNG"}
        if "psnr" in per_image:
            out["psnr"] = {"value": float(torch.cat(per_image["psnr"]).mean()), "unit": "dB", "count": n,
                           "settings": {**image_settings, "data_range": 1.0, "average": "mean of per-image PSNR"}}
        if "ssim" in per_image:
            out["ssim"] = {"value": float(torch.cat(per_image["ssim"]).mean()), "count": n,
                           "settings": {**image_settings, "data_range": 1.0, "window": "7x7 uniform (skimage)", "average": "mean over RGB and images"}}
        if "lpips" in per_image:
            net = metric_weights.get("lpips_net", "alex")
            path = resolve(LPIPS_BACKBONES[net], metric_weights.get("lpips"))
            out["lpips"] = {"value": float(torch.cat(per_image["lpips"]).mean()), "count": n,
                            "settings": {"version": "0.1", "net": net, "backbone": path.name, "backbone_digest": file_digest(path)}}
        if feats:
            path = resolve(INCEPTION_FID, metric_weights.get("inception"))
            layer = metric_weights.get("fid_layer", fidlib.FID_LAYER)
            inception = {"network": "torch-fidelity inception-v3-compat", "weights": path.name, "weights_digest": file_digest(path)}
            if feats.get("ref") is not None:
                ref_stats = fidlib.statistics(feats["ref"].features())
                if "rfid" in self.metrics:
                    value = fidlib.frechet_distance(fidlib.statistics(feats["rec"].features(layer)), ref_stats)
                    out["rfid"] = {"value": value, "count": n, "settings": {**inception, "layer": layer, "reference": "the originals"}}
                if "pfid" in self.metrics:
                    value = fidlib.frechet_distance(fidlib.statistics(feats["pert"].features()), ref_stats)
                    out["pfid"] = {"value": value, "count": n, "settings": {**inception, "layer": layer, **self.pfid,
                                   "perturbation": "fraction alpha of tokens -> one of the delta nearest other codes"}}
                if "kid" in self.metrics:
                    from torch_fidelity.metric_kid import kid_features_to_metric

                    f1, f2 = feats["rec"].features(layer), feats["ref"].features()
                    size = min(1000, n)
                    if size < 2:
                        raise TokError(f"KID needs at least 2 images, got {n}")
                    kid = kid_features_to_metric(f1, f2, kid_subsets=100, kid_subset_size=size, rng_seed=2020, verbose=False)
                    out["kid"] = {"value": kid["kernel_inception_distance_mean"], "std": kid["kernel_inception_distance_std"], "count": n,
                                  "settings": {**inception, "subsets": 100, "subset_size": size, "kernel": "poly3"}}
            if "is" in self.metrics:
                from torch_fidelity.metric_isc import isc_features_to_metric

                splits = min(10, n)
                isc = isc_features_to_metric(feats["rec"].features(fidlib.IS_LAYER), splits=splits, shuffle=True, rng_seed=2020)
                out["is"] = {"value": isc["inception_score_mean"], "std": isc["inception_score_std"], "count": n,
                             "settings": {**inception, "splits": splits, "of": "reconstructions"}}
        if "codebook" in self.metrics:
            c = stats.compute()
            size = self.tokenizer.layout.extra.get("image_size")
            pixels = size * size if size else None
            out["codebook"] = {"value": c["codebook_usage"], "count": n, **{k: v for k, v in c.items() if k not in ("count", "streams")},
                               "bits_per_pixel": c["bits_per_input"] / pixels if pixels else None, "streams": c["streams"],
                               "settings": {"usage": "codes used at least once over the dataset / K", "perplexity": "2^entropy of dataset-level frequencies"}}
        return out


def evaluate(
    model: str | Tokenizer,
    data: str | os.PathLike,
    metrics: str | list[str] | None = None,
    *,
    out: str | os.PathLike | None = None,
    weights: str | os.PathLike | None = None,
    device: str | None = None,
    batch_size: int = 8,
    num_tokens: int | None = None,
    limit: int | None = None,
    decode_opts: dict[str, Any] | None = None,
    metric_weights: dict[str, Any] | None = None,
    pfid_alpha: float = 0.5,
    pfid_delta: int = 10,
    pfid_seed: int = 0,
    cpu_bf16: bool = False,
    cpu_int8: bool = False,
    cpu_winograd_encoder: bool = False,
    compile_networks: bool = False,
    report: bool = True,
    progress: bool = False,
    on_phase: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Evaluate `model` on the images in `data`; returns the dictionary written to `out/metrics.json`.

    `metric_weights` may name files for the metric networks: {"inception": path, "lpips": path,
    "lpips_net": "alex"|"vgg"|"squeeze", "device": ...}. Without `out` the run lives in a
    temporary folder that is removed afterwards. `cpu_bf16` turns on the model's opt-in bf16 CPU
    inference (an error for families without one), `cpu_int8` its int8 one and
    `cpu_winograd_encoder` its Winograd encoder convolutions; all three are part of the run's
    identity.
    `compile_networks` runs `tokenizer.compile_networks()` first (outputs equal to float rounding,
    so not part of the identity; recorded in the options)."""
    from ..api import load

    tokenizer = load(model, weights, device) if isinstance(model, str) else model
    if cpu_bf16:
        tokenizer.cpu_bf16 = True
    if cpu_int8:
        tokenizer.cpu_int8 = True
    if cpu_winograd_encoder:
        tokenizer.cpu_winograd_encoder = True
    if compile_networks and not tokenizer.compiled:
        tokenizer.compile_networks()
    names = parse_metrics(metrics, tokenizer.modality)
    files = dataset_items(data, tokenizer.modality)
    if limit is not None:
        files = files[:limit]
    if out is None:
        with tempfile.TemporaryDirectory(prefix="tok-eval-") as tmp:
            return evaluate(tokenizer, data, names, out=tmp, batch_size=batch_size, num_tokens=num_tokens, limit=limit, decode_opts=decode_opts,
                            metric_weights=metric_weights, pfid_alpha=pfid_alpha, pfid_delta=pfid_delta, pfid_seed=pfid_seed, report=False, progress=progress)
    decode_opts = accepted_decode_opts(tokenizer, decode_opts)
    run = Run(tokenizer, files, Path(out), data=str(data), metrics=names, batch_size=batch_size, num_tokens=num_tokens,
              decode_opts=decode_opts, pfid_alpha=pfid_alpha, pfid_delta=pfid_delta, pfid_seed=pfid_seed, progress=progress)
    check_metric_weights(names, dict(metric_weights or {}), tokenizer)
    run.prepare()
    started = time.time()
    (on_phase or (lambda _: None))("reconstruct")
    done_now = run.reconstruct()
    (on_phase or (lambda _: None))("measure")
    results = run.measure(dict(metric_weights or {}))
    from .. import __version__

    summary = {
        "format_version": RUN_FORMAT,
        "tok_version": __version__,
        "model": tokenizer.name,
        "weights_digest": tokenizer.weights_digest,
        "modality": tokenizer.modality,
        "dataset": {"path": str(data), "digest": run.digest, "count": len(files)},
        "options": {"num_tokens": run.num_tokens, "decode": run.decode_opts, "batch_size": batch_size, "cpu_bf16": tokenizer.cpu_bf16,
                    "cpu_int8": tokenizer.cpu_int8, "cpu_winograd_encoder": tokenizer.cpu_winograd_encoder, "compiled": tokenizer.compiled},
        "metrics": results,
        "items_reconstructed_this_session": done_now,
        "seconds": round(time.time() - started, 2),
    }
    write_json(summary, Path(out) / "metrics.json")
    if report:
        from .report import write_report

        write_report(run, summary)
    return summary


def accepted_decode_opts(tokenizer: Tokenizer, opts: dict[str, Any] | None) -> dict[str, Any]:
    """Decode options for this model: the CLI always passes a noise `seed`, which deterministic
    decoders (codecs, VQ tokenizers) do not take; any other option they lack is an error."""
    import inspect

    from ..api import check_options

    opts = {k: v for k, v in (opts or {}).items() if v is not None}
    params = inspect.signature(tokenizer.decode).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if "seed" in opts and "seed" not in params and not takes_any:
        opts.pop("seed")
    check_options(tokenizer.decode, opts, tokenizer.name)
    return opts


def check_metric_weights(names: list[str], metric_weights: dict[str, Any], tokenizer: Tokenizer) -> None:
    """Fail before any decoding when a metric network's weights or the codebook are missing."""
    from ..metrics.weights import INCEPTION_FID, LPIPS_BACKBONES, resolve

    if "fvd" in names:
        from ..metrics.weights import I3D_FVD

        resolve(I3D_FVD, metric_weights.get("i3d"))
    if "utmos" in names:
        from ..metrics.weights import UTMOS22_STRONG

        resolve(UTMOS22_STRONG, metric_weights.get("utmos"))
    if set(names) & {"rfid", "pfid", "kid", "is"}:
        resolve(INCEPTION_FID, metric_weights.get("inception"))
    if "lpips" in names:
        net = metric_weights.get("lpips_net", "alex")
        if net not in LPIPS_BACKBONES:
            raise TokError(f"unknown LPIPS backbone {net!r}; expected one of {', '.join(LPIPS_BACKBONES)}")
        resolve(LPIPS_BACKBONES[net], metric_weights.get("lpips"))
    if "pfid" in names:
        from ..metrics.perturb import quantizer_of

        quantizer_of(tokenizer)


def load_summary(folder: str | os.PathLike) -> dict[str, Any]:
    path = Path(folder) / "metrics.json" if Path(folder).is_dir() else Path(folder)
    if not path.is_file():
        raise TokError(f"{path}: no metrics.json (not a finished evaluation run)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise TokError(f"{path}: corrupt metrics.json ({e})") from None


def compare_table(folders: list[str | os.PathLike]) -> str:
    """A side-by-side text table of the metrics of several runs."""
    runs = [load_summary(f) for f in folders]
    names = list(dict.fromkeys(m for r in runs for m in r["metrics"]))
    header = ["metric"] + [f"{r['model']} ({Path(f).name})" for r, f in zip(runs, folders)]
    rows = [header, ["images"] + [str(r["dataset"]["count"]) for r in runs], ["dataset"] + [r["dataset"]["digest"] for r in runs]]
    for name in names:
        cells = [name]
        for r in runs:
            m = r["metrics"].get(name)
            cells.append("-" if m is None or m.get("value") is None else f"{m['value']:.4f}")
        rows.append(cells)
    if len({r["dataset"]["digest"] for r in runs}) > 1:
        rows.append(["note"] + ["different datasets: numbers are not comparable"] + [""] * (len(runs) - 1))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)
