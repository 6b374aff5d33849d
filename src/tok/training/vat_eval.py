"""Held-out evaluation of a VAT model against the trivial occupancy-grid codec with equal bits.

For each held-out shape (normalised, longest side spanning [-bound, bound]) and each prefix of
k scales, VAT's tokens carry bits_k = tokens_k * log2(codebook) bits. The trivial codec stores
the shape's occupancy at the centres of an n^3 grid of cells tiling its bounding cube, with the
largest n such that n^3 <= bits_k, and decodes it by marching cubes (level 0.5) on that grid
padded with empty cells. Both reconstructions are scored with `tok.metrics.shape`:

* Chamfer-L1 (½ accuracy + ½ completeness) between 10 000 surface samples of each mesh, in the
  normalised frame;
* F-score at tau = 1 % of the reference bounding-box diagonal;
* volumetric IoU of occupancy on a G^3 lattice over [-1, 1]^3 (VAT: logits > 0; trivial codec:
  its trilinear field > 0.5; reference: exact occupancy).

    python -m tok.training.vat_eval --weights runs/vat-small/model.safetensors --data ~/.cache/tok-data/shapes
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..core.media.shape import (
    Normalization,
    Shape,
    closed_mesh,
    grid_points,
    grid_to_mesh,
    read_shape,
    sample_surface,
)
from ..metrics.shape import chamfer_distance, f_score, volumetric_iou
from ..tokenizers.vat import VAT

Inside = Callable[[np.ndarray], np.ndarray]


@dataclass
class EvalShape:
    """A normalised mesh and an exact inside test (points (N, 3) -> bool (N,))."""

    name: str
    mesh: Shape
    inside: Inside


def corpus_eval_shape(path: Path, bound: float) -> EvalShape:
    shape = read_shape(path)
    norm = Normalization.fit(shape.vertices, bound)
    normalised = Shape(norm.apply(shape.vertices), shape.faces, None, str(path))
    mesh = closed_mesh(normalised)
    return EvalShape(path.name, normalised, lambda p: mesh.contains(p))


def procedural_eval_shape(seed: int, bound: float) -> EvalShape | None:
    from .shapes import procedural_shape

    made = procedural_shape(seed)
    if made is None:
        return None
    shape, field = made
    norm = Normalization.fit(shape.vertices, bound)
    normalised = Shape(norm.apply(shape.vertices), shape.faces, None, shape.path)
    return EvalShape(f"procedural-{seed}", normalised, lambda p: field(norm.invert(p.astype(np.float64))) < 0)


# -- the trivial codec ---------------------------------------------------------------------------
def grid_codec(inside: Inside, bits: float, bound: float) -> tuple[np.ndarray, int]:
    """The occupancy bits of the largest n^3 cell grid with n^3 <= bits: (n, n, n) bool, n."""
    n = max(1, math.floor(bits ** (1 / 3) + 1e-9))
    step = 2 * bound / n
    centres = -bound + (np.arange(n) + 0.5) * step
    points = np.stack(np.meshgrid(centres, centres, centres, indexing="ij"), -1).reshape(-1, 3)
    return inside(points).reshape(n, n, n), n


def _padded(cells: np.ndarray, bound: float) -> tuple[np.ndarray, float, float]:
    n = cells.shape[0]
    step = 2 * bound / n
    return np.pad(cells.astype(np.float32), 1), -bound - step / 2, step


def grid_codec_mesh(cells: np.ndarray, bound: float) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes (level 0.5) of the padded cell grid, in the normalised frame."""
    from skimage.measure import marching_cubes

    padded, low, step = _padded(cells, bound)
    if padded.max() < 0.5:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64)
    vertices, faces, _, _ = marching_cubes(padded, level=0.5, spacing=(step,) * 3)
    return vertices + low, faces


def grid_codec_occupancy(cells: np.ndarray, bound: float, points: np.ndarray) -> np.ndarray:
    """The codec's trilinear occupancy field at `points` (N, 3) cut at 0.5 (zero outside)."""
    padded, low, step = _padded(cells, bound)
    high = low + step * (padded.shape[0] - 1)
    coords = torch.from_numpy((points - low) / (high - low) * 2 - 1).float()
    # grid_sample reads (x -> W, y -> H, z -> D); the cell array is indexed [x, y, z] = [D, H, W].
    grid = coords[:, [2, 1, 0]].view(1, 1, 1, -1, 3)
    field = F.grid_sample(torch.from_numpy(padded)[None, None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return field.view(-1).numpy() > 0.5


# -- scoring --------------------------------------------------------------------------------------
def _surface(vertices: np.ndarray, faces: np.ndarray, count: int) -> np.ndarray | None:
    if len(faces) == 0:
        return None
    return sample_surface(Shape(np.asarray(vertices, np.float64), np.asarray(faces)), count, seed=1)[:, :3]


def score(reference: EvalShape, ref_points: np.ndarray, ref_occ: np.ndarray, mesh: tuple[np.ndarray, np.ndarray], occ: np.ndarray, tau: float, count: int) -> dict[str, float]:
    rec = _surface(*mesh, count)
    iou = volumetric_iou(torch.from_numpy(ref_occ), torch.from_numpy(occ))
    if rec is None:  # empty reconstruction: worst scores, but keep the row
        return {"chamfer": float("nan"), "fscore": 0.0, "iou": iou}
    ref, out = torch.from_numpy(ref_points), torch.from_numpy(rec)
    return {"chamfer": chamfer_distance(ref, out), "fscore": f_score(ref, out, threshold=tau), "iou": iou}


@torch.inference_mode()
def evaluate(model: VAT, shapes: list[EvalShape], grid: int = 64, samples: int = 10000) -> list[dict]:
    """One row per (shape, prefix, codec) with chamfer / fscore / iou and the bits used."""
    config = model.config
    lattice = grid_points(grid)
    rows = []
    for item in shapes:
        ref_points = sample_surface(item.mesh, samples, seed=2)[:, :3]
        ref_occ = item.inside(lattice)
        diagonal = float(np.linalg.norm(np.ptp(item.mesh.vertices, axis=0)))
        tau = 0.01 * diagonal
        points = torch.from_numpy(sample_surface(item.mesh, config.num_points, seed=0))[None]
        tokens = model.encode(points)
        bits = 0.0
        for k, count in enumerate(config.scale_tokens, start=1):
            bits += count * math.log2(config.codebook_size)
            logits = model.decode(tokens, scales=k, resolution=grid)[0].cpu().numpy()
            vat = score(item, ref_points, ref_occ, grid_to_mesh(logits, 0.0), logits.reshape(-1) > 0, tau, samples)
            cells, n = grid_codec(item.inside, bits, config.bound)
            trivial = score(item, ref_points, ref_occ, grid_codec_mesh(cells, config.bound), grid_codec_occupancy(cells, config.bound, lattice), tau, samples)
            rows.append({"shape": item.name, "scales": k, "tokens": sum(config.scale_tokens[:k]), "bits": bits, "codec": "vat", **vat})
            rows.append({"shape": item.name, "scales": k, "tokens": sum(config.scale_tokens[:k]), "bits": bits, "codec": f"grid{n}", **trivial})
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Mean over shapes per (scales, codec); `codec` names the first shape's grid size for the trivial codec."""
    keys = sorted({(r["scales"], r["codec"].startswith("grid")) for r in rows})
    out = []
    for scales, is_grid in keys:
        group = [r for r in rows if r["scales"] == scales and r["codec"].startswith("grid") == is_grid]
        means = {m: float(np.mean([r[m] for r in group])) for m in ("fscore", "iou")}
        # Chamfer is undefined for an empty reconstruction: averaged over the others, which are counted.
        chamfers = [r["chamfer"] for r in group if not math.isnan(r["chamfer"])]
        means["chamfer"] = float(np.mean(chamfers)) if chamfers else float("nan")
        out.append({
            "scales": scales, "tokens": group[0]["tokens"], "bits": group[0]["bits"], "codec": group[0]["codec"],
            "shapes": len(group), "empty": len(group) - len(chamfers), **means,
        })
    return out


def main() -> None:
    from ..core.weights import WeightSource
    from ..tokenizers.vat import load_weights, preset
    from .vat import EVAL_SEED, HELD_OUT

    parser = argparse.ArgumentParser(description="VAT held-out evaluation vs the equal-bit occupancy-grid codec")
    parser.add_argument("--model", default="vat-small")
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--procedural", type=int, default=10)
    parser.add_argument("--grid", type=int, default=64, help="IoU lattice and VAT's marching-cubes grid")
    parser.add_argument("--samples", type=int, default=10000, help="surface samples per mesh for Chamfer and F-score")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = VAT(preset(args.model.removeprefix("vat-")))
    load_weights(model, WeightSource("explicit", args.weights))
    model.eval()
    bound = model.config.bound
    corpus = [corpus_eval_shape(args.data / name, bound) for name in HELD_OUT]
    procedural = [s for s in (procedural_eval_shape(EVAL_SEED + i, bound) for i in range(3 * args.procedural)) if s][: args.procedural]
    result = {}
    for label, shapes in (("corpus", corpus), ("procedural", procedural)):
        rows = evaluate(model, shapes, grid=args.grid, samples=args.samples)
        result[label] = {"rows": rows, "summary": summarise(rows)}
        print(f"== {label} held-out ({len(shapes)} shapes)")
        for r in result[label]["summary"]:
            print(
                f"scales {r['scales']:2d} tokens {r['tokens']:4d} bits {r['bits']:6.0f} {r['codec']:7s} chamfer {r['chamfer']:.4f} "
                f"F@1% {r['fscore']:.3f} IoU {r['iou']:.3f} empty {r['empty']}"
            )
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
