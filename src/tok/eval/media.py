"""Evaluation runs of audio and video models (image runs live in `run.py`).

These go through the tokenizer's media contract (`read_media` / `encode_items` / `write_media`),
so every family that implements it can be evaluated:

- audio: reconstructions are WAV files at the original file's sample rate and length
  (`write_media` trims the codec's frame padding and resamples back); references are the
  original files read as mono. Metrics are computed per clip; a clip a metric cannot score
  (PESQ finds no utterance, STOI too short) is listed under `failed` and left out of the mean,
  never averaged in as an error code.
- video: references are the model's own view of each original (`postprocess(read_media(...))`:
  fitted, cropped, [0, 1]); reconstructions are stored losslessly as uint8 frames
  (`recon/<name>.npy`, (F, 3, H, W)) for the metrics, plus the viewable file `write_media`
  makes (MP4, or PNG for an image given as a one-frame clip). PSNR/SSIM are per frame
  (data range 1.0), averaged over the frames of a clip, then over clips; FVD compares the
  I3D features of all reference clips with those of all reconstructions.
- shape: reconstructions are the decoded occupancy logits (`recon/<name>.npy`, (G, G, G) on
  `grid_points(G)`) plus the mesh `write_media` makes. Chamfer-L1 and F-score (τ = 0.01) compare
  surface samples of the original and of the marching-cubes surface, in the model's normalised
  frame halved (the decoder grid becomes ONet's unit cube); IoU compares the inside of the
  watertight original with logit > 0 on the decoder's lattice. A shape a metric cannot score (an
  empty decoded surface; IoU of a point cloud or an open mesh) is listed under `failed`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from ..core.errors import TokError
from ..core.io import atomic_path
from ..core.tokens import Tokens

if TYPE_CHECKING:
    from .run import Run

AUDIO_RUN_METRICS = ("pesq", "stoi", "estoi", "mel", "sisdr", "utmos", "codebook")
VIDEO_RUN_METRICS = ("psnr", "ssim", "fvd", "codebook")


def item_tokens(tokens: Tokens | list[Tokens], count: int) -> list[Tokens]:
    """`encode_items` returns one batch or one `Tokens` per item; give one per item either way."""
    return list(tokens) if isinstance(tokens, list) else [tokens[i] for i in range(count)]


def trimmed(tokenizer, tokens: Tokens) -> Tokens:
    """An item's tokens without the padding frames a batch added (sources record `num_frames`)."""
    source = tokens.sources[0] if tokens.sources else {}
    if tokenizer.modality != "audio" or "num_frames" not in source:
        return tokens
    n = int(source["num_frames"])
    return tokens.replace_streams([s[..., :n] for s in tokens.streams])


def reconstruct_batch(run: Run, chunk: list[Path], items: list[Tensor], sources: list[dict[str, Any]], opts: dict[str, Any]) -> None:
    """Encode and decode one batch of media files (`items`, `sources`: their `read_media`),
    writing each item's tokens and reconstruction."""
    from ..api import decode_tokens

    tokenizer = run.tokenizer
    encoded = tokenizer.encode_items(items, sources, **opts)
    per_item = item_tokens(encoded, len(chunk))
    if isinstance(encoded, list):
        decoded = [decode_tokens(tokenizer, t, **run.decode_opts)[0] for t in per_item]
    else:
        decoded = list(decode_tokens(tokenizer, encoded, **run.decode_opts))
    for path, tokens, out in zip(chunk, per_item, decoded):
        out = out.float().cpu()
        if not bool(torch.isfinite(out).all()):
            raise TokError(f"model {tokenizer.name!r} produced NaN or infinite values reconstructing {path.name}")
        source = tokens.sources[0] if tokens.sources else {}
        tok_file, recon, _ = run.paths(path)
        if tokenizer.modality == "shape":
            write_shape_view(run, path, out, source)
            save_array(out.numpy().astype(np.float32), recon)
        elif tokenizer.modality == "video":
            frames = out[: int(source["num_frames"])] if source.get("num_frames") else out
            tokenizer.write_media(frames, viewable_path(run, path, source), source)
            save_frames(frames, recon)
        else:
            tokenizer.write_media(out, recon, source)
            conform_audio(recon, source)
        trimmed(tokenizer, tokens).save(tok_file)  # last: its presence marks the item done


def conform_audio(path: Path, source: dict[str, Any]) -> None:
    """Bring a written reconstruction to the original's sample rate and length when the codec
    writes at its own rate (a no-op for WavTokenizer and XY-Tokenizer, which write the source's rate),
    so every metric pairs sample for sample."""
    from ..core.media import read_audio, write_audio
    from ..core.media.audio import resample

    rate, length = source.get("source_sample_rate"), source.get("source_num_samples")
    if rate is None or length is None:
        return
    wave, info = read_audio(path)
    if (info.sample_rate, wave.shape[-1]) == (rate, length):
        return
    wave = resample(wave, info.sample_rate, int(rate))
    wave = torch.nn.functional.pad(wave, (0, max(0, int(length) - wave.shape[-1])))[..., : int(length)]
    write_audio(wave, path, int(rate))


def viewable_path(run: Run, path: Path, source: dict[str, Any]) -> Path:
    return run.folder / "recon" / f"{path.name}{run.tokenizer.output_suffix(source)}"


def save_frames(frames: Tensor, path: Path) -> None:
    save_array((frames.clamp(0, 1) * 255).round().to(torch.uint8).numpy(), path)


def save_array(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def load_frames(path: Path) -> Tensor:
    """(F, 3, H, W) float in [0, 1] from a stored uint8 reconstruction."""
    return torch.from_numpy(np.load(path, allow_pickle=False)).float() / 255


def reference_frames(run: Run, path: Path) -> Tensor:
    """The model's view of an original clip: (F, 3, H, W) in [0, 1]."""
    item, source = run.tokenizer.read_media(path)
    frames = run.tokenizer.postprocess(item[None])[0].float().cpu()
    return frames[: int(source["num_frames"])] if source.get("num_frames") else frames


def audio_pair(run: Run, path: Path) -> tuple[Tensor, Tensor, int]:
    """(original mono clip, reconstruction, rate); the reconstruction must match length and rate."""
    from ..core.media import read_audio

    ref, info = read_audio(path)
    recon_path = run.paths(path)[1]
    rec, rec_info = read_audio(recon_path)
    if (rec_info.sample_rate, rec.shape[-1]) != (info.sample_rate, ref.shape[-1]):
        raise TokError(f"{recon_path}: {rec.shape[-1]} samples at {rec_info.sample_rate} Hz, but {path.name} has "
                       f"{ref.shape[-1]} at {info.sample_rate} Hz")
    return ref[0].double(), rec[0].double(), info.sample_rate


AUDIO_SETTINGS = {
    "pesq": {"mode": "wb", "rate": "16 kHz (resampled)", "failed": "clips PESQ cannot score are listed, not averaged"},
    "stoi": {"extended": False},
    "estoi": {"extended": True},
    "mel": {"windows": "32..2048", "n_mels": "5..320", "log": "log10, clamp 1e-5", "reduction": "L1 mean per scale, summed"},
    "sisdr": {"unit": "dB", "zero_mean": True},
    "utmos": {"model": "UTMOS22 strong", "rate": "16 kHz (resampled)", "of": "reconstructions"},
}


def _audio_score(name: str, ref: Tensor, rec: Tensor, rate: int) -> float:
    from ..metrics import audio as A

    if name == "pesq":
        return float(A.pesq_per_item(ref[None], rec[None], rate)[0])
    if name in ("stoi", "estoi"):
        return float(A.stoi_per_item(ref[None], rec[None], rate, extended=name == "estoi")[0])
    if name == "mel":
        return float(A.mel_distance(ref[None], rec[None], rate))
    return float(A.si_sdr_per_item(ref[None], rec[None])[0])


def measure_audio(run: Run, metric_weights: dict[str, Any]) -> dict[str, Any]:
    from tqdm.auto import tqdm

    names = [m for m in run.metrics if m in AUDIO_SETTINGS and m != "utmos"]
    values: dict[str, dict[str, float]] = {m: {} for m in names}
    failed: dict[str, list[dict[str, str]]] = {m: [] for m in names}
    seconds = 0.0
    for path in tqdm(run.files, desc="metrics", unit="clip", disable=not run.progress):
        ref, rec, rate = audio_pair(run, path)
        seconds += ref.numel() / rate
        for m in names:
            try:
                values[m][path.name] = _audio_score(m, ref, rec, rate)
            except TokError as e:
                failed[m].append({"item": path.name, "error": str(e)})
    if "utmos" in run.metrics:
        names.append("utmos")
        values["utmos"], failed["utmos"] = utmos_scores(run, metric_weights), []
    out: dict[str, Any] = {}
    for m in names:
        scored = list(values[m].values())
        out[m] = {"value": float(np.mean(scored)) if scored else None, "count": len(scored), "failed": failed[m],
                  "per_item": values[m], "settings": AUDIO_SETTINGS[m]}
    if "codebook" in run.metrics:
        out["codebook"] = codebook_summary(run, seconds=seconds)
    return out


def utmos_scores(run: Run, metric_weights: dict[str, Any]) -> dict[str, float]:
    """UTMOS of every reconstruction (batched with a padding mask, so each scores as it would alone)."""
    from ..core.media import read_audio
    from ..metrics import utmos as utmos_module

    scorer = utmos_module.UTMOS(metric_weights.get("utmos"), device=metric_weights.get("device"))
    by_rate: dict[int, list[tuple[str, Tensor]]] = {}
    for path in run.files:
        wave, info = read_audio(run.paths(path)[1])
        by_rate.setdefault(info.sample_rate, []).append((path.name, wave[0]))
    scores = {}
    for rate, clips in by_rate.items():
        for (name, _), score in zip(clips, scorer([c for _, c in clips], rate)):
            scores[name] = float(score)
    return {p.name: scores[p.name] for p in run.files}


def measure_video(run: Run, metric_weights: dict[str, Any]) -> dict[str, Any]:
    from tqdm.auto import tqdm

    from ..metrics.image import psnr_per_image, ssim_per_image

    wanted = set(run.metrics)
    per_clip: dict[str, dict[str, float]] = {m: {} for m in ("psnr", "ssim") if m in wanted}
    clips_ref, clips_rec = [], []
    frames_total = 0
    for path in tqdm(run.files, desc="metrics", unit="clip", disable=not run.progress):
        ref, rec = reference_frames(run, path), load_frames(run.paths(path)[1])
        if ref.shape != rec.shape:
            raise TokError(f"{run.paths(path)[1]}: frames {tuple(rec.shape)} do not match the original's {tuple(ref.shape)}")
        frames_total += ref.shape[0]
        if "psnr" in per_clip:
            per_clip["psnr"][path.name] = float(psnr_per_image(ref, rec).mean())
        if "ssim" in per_clip:
            per_clip["ssim"][path.name] = float(ssim_per_image(ref, rec).mean())
        if "fvd" in wanted:
            clips_ref.append(ref.permute(1, 0, 2, 3))
            clips_rec.append(rec.permute(1, 0, 2, 3))
    n = len(run.files)
    frame_settings = {"range": "[0, 1]", "channels": "RGB", "data_range": 1.0, "reference": "model view of the original, float",
                      "reconstruction": "uint8 frames", "average": "mean over the frames of a clip, then over clips", "frames": frames_total}
    out: dict[str, Any] = {}
    for m, values in per_clip.items():
        out[m] = {"value": float(np.mean(list(values.values()))), "unit": "dB" if m == "psnr" else None, "count": n,
                  "per_item": values, "settings": frame_settings | ({"window": "7x7 uniform (skimage)"} if m == "ssim" else {})}
    if "fvd" in wanted:
        from ..core.weights import file_digest
        from ..metrics.video import fvd
        from ..metrics.weights import I3D_FVD, resolve

        lengths = sorted({c.shape[1] for c in clips_ref})
        sizes = sorted({tuple(c.shape[-2:]) for c in clips_ref})
        if len(lengths) > 1 or len(sizes) > 1:
            raise TokError(f"FVD needs clips of one length and size; {run.data} gives frame counts {lengths} and sizes {sizes}")
        weights = resolve(I3D_FVD, metric_weights.get("i3d"))
        value = fvd(torch.stack(clips_ref), torch.stack(clips_rec), weights=weights, device=metric_weights.get("device"))
        out["fvd"] = {"value": value, "count": n, "settings": {"network": "I3D (StyleGAN-V TorchScript port)", "weights": weights.name,
                      "weights_digest": file_digest(weights), "frames_per_clip": lengths[0], "resolution": list(sizes[0]),
                      "reference": "model view of the originals", "features": "400-d logits, rescale+resize to 224"}}
    if "codebook" in wanted:
        out["codebook"] = codebook_summary(run)
    return out


def codebook_summary(run: Run, seconds: float | None = None) -> dict[str, Any]:
    from ..metrics.codebook import CodebookStats

    stats = CodebookStats()
    for p in run.files:
        stats.update(Tokens.load(run.paths(p)[0]))
    c = stats.compute()
    out = {"value": c["codebook_usage"], "count": c["count"], **{k: v for k, v in c.items() if k not in ("count", "streams")}}
    if seconds:
        out["bits_per_second"] = c["bits_per_input"] * c["count"] / seconds
    out["streams"] = c["streams"]
    out["settings"] = {"usage": "codes used at least once over the dataset / K", "perplexity": "2^entropy of dataset-level frequencies",
                       "padding": "frames a batch padded are not counted"}
    return out


# -- shapes ----------------------------------------------------------------------------------------
SHAPE_RUN_METRICS = ("chamfer", "fscore", "iou", "codebook")
SHAPE_EVAL_POINTS = 10_000
FSCORE_THRESHOLD = 0.01
# VAT's normalised frame puts the decoder grid on [-1, 1]^3; halving it gives ONet's unit cube
# [-0.5, 0.5]^3, the frame in which Chamfer and F-score at 1% are usually reported.
UNIT_CUBE_SCALE = 0.5


def shape_reference(run: Run, path: Path) -> tuple[Any, dict[str, Any]]:
    """(the original shape in the model's normalised frame, its source description)."""
    from ..core.media.shape import Normalization, Shape, read_shape

    _, source = run.tokenizer.read_media(path)
    shape = read_shape(path)
    norm = Normalization.from_dict(source["normalization"])
    return Shape(norm.apply(shape.vertices), shape.faces, shape.normals, shape.path), source


def shape_surface_points(shape, count: int = SHAPE_EVAL_POINTS, seed: int = 0) -> Tensor:
    """(N, 3) surface points: `count` area-uniform samples of a mesh, or a cloud's own points."""
    from ..core.media.shape import sample_surface

    if not shape.is_mesh:
        return torch.from_numpy(np.asarray(shape.vertices, dtype=np.float64))
    return torch.from_numpy(sample_surface(shape, count, seed=seed)[:, :3]).double()


def reconstructed_surface(logits: np.ndarray, count: int = SHAPE_EVAL_POINTS, seed: int = 0) -> Tensor | None:
    """(N, 3) area-uniform samples of the marching-cubes surface of decoded occupancy logits; None when empty."""
    from ..core.media.shape import Shape, grid_to_mesh

    vertices, faces = grid_to_mesh(logits, level=0.0)
    if len(faces) == 0:
        return None
    return shape_surface_points(Shape(vertices.astype(np.float64), faces), count, seed)


def write_shape_view(run: Run, path: Path, logits: Tensor, source: dict[str, Any]) -> None:
    """The mesh `write_media` makes, for looking at; an empty surface has none (metrics list it)."""
    try:
        run.tokenizer.write_media(logits, viewable_path(run, path, source), source)
    except TokError:
        pass


def surface_scores(reference: Tensor, reconstruction: Tensor, threshold: float) -> tuple[float, float]:
    """(Chamfer-L1, F-score at `threshold`) as `metrics.shape` defines them, from one pass of
    nearest-neighbour searches (the costly part) instead of one per metric."""
    from ..metrics.shape import nearest_distances

    ref, rec = reference.double()[None], reconstruction.double()[None]
    accuracy, completeness = nearest_distances(rec, ref)[0], nearest_distances(ref, rec)[0]
    chamfer = 0.5 * float(accuracy.mean() + completeness.mean())
    precision, recall = float((accuracy < threshold).double().mean()), float((completeness < threshold).double().mean())
    return chamfer, 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def measure_shape(run: Run, metric_weights: dict[str, Any]) -> dict[str, Any]:
    from tqdm.auto import tqdm

    from ..core.media.shape import closed_mesh, grid_points, occupancy_labels
    from ..metrics.shape import volumetric_iou

    count = int(metric_weights.get("shape_points", SHAPE_EVAL_POINTS))

    names = [m for m in run.metrics if m != "codebook"]
    values: dict[str, dict[str, float]] = {m: {} for m in names}
    failed: dict[str, list[dict[str, str]]] = {m: [] for m in names}
    for path in tqdm(run.files, desc="metrics", unit="shape", disable=not run.progress):
        reference, _ = shape_reference(run, path)
        logits = np.load(run.paths(path)[1], allow_pickle=False)
        if {"chamfer", "fscore"} & set(names):
            rec_points = reconstructed_surface(logits, count)
            scores = None
            if rec_points is not None:
                ref_points = shape_surface_points(reference, count) * UNIT_CUBE_SCALE
                scores = dict(zip(("chamfer", "fscore"), surface_scores(ref_points, rec_points * UNIT_CUBE_SCALE, FSCORE_THRESHOLD)))
            for m in ("chamfer", "fscore"):
                if m not in values:
                    continue
                if scores is None:
                    failed[m].append({"item": path.name, "error": "the decoded occupancy has no surface (all inside or all outside)"})
                else:
                    values[m][path.name] = scores[m]
        if "iou" in values:
            try:
                inside = occupancy_labels(closed_mesh(reference), grid_points(logits.shape[0])).reshape(logits.shape)
            except TokError as e:  # point clouds and open meshes have no inside
                failed["iou"].append({"item": path.name, "error": str(e)})
                continue
            values["iou"][path.name] = volumetric_iou(torch.from_numpy(inside > 0.5), torch.from_numpy(logits > 0))
    frame = {"frame": "model's normalised frame halved: grid = unit cube [-0.5, 0.5]^3", "points": f"{count} area-uniform surface samples (point clouds: all their points)",
             "reconstruction": "marching cubes of the decoded occupancy logits at level 0"}
    settings = {
        "chamfer": {**frame, "norm": "L1", "formula": "(accuracy + completeness) / 2"},
        "fscore": {**frame, "threshold": FSCORE_THRESHOLD},
        "iou": {"grid": "the decoder's lattice (grid_points(G), G = the decode resolution)", "reference": "inside the watertight original",
                "reconstruction": "logit > 0"},
    }
    out: dict[str, Any] = {}
    for m in names:
        scored = list(values[m].values())
        out[m] = {"value": float(np.mean(scored)) if scored else None, "count": len(scored), "failed": failed[m],
                  "per_item": values[m], "settings": settings[m]}
    if "codebook" in run.metrics:
        out["codebook"] = codebook_summary(run)
    return out
