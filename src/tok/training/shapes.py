"""Shape training data: procedural CSG shapes with exact occupancy, corpus meshes, one dataset.

Procedural shapes are signed-distance compositions (negative inside) of spheres, boxes,
cylinders, tori and capsules under random rotation, anisotropic scaling and translation,
combined by union, difference and intersection. Their occupancy is exact (the sign of the
field); their surface is the marching-cubes mesh of the field (scikit-image).

Every training shape is stored normalised (longest bounding-box side spans [-bound, bound])
as a pool of surface samples and a pool of uniform and near-surface occupancy queries; a
dataset item draws the model's numbers of points and queries from the pools and applies a
random signed axis permutation (one of the 48 symmetries of the cube) to all of them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..core import TokError
from ..core.media.shape import (
    Normalization,
    Shape,
    closed_mesh,
    grid_points,
    grid_to_mesh,
    occupancy_labels,
    read_shape,
    sample_surface,
)

logger = logging.getLogger(__name__)

SDF = Callable[[np.ndarray], np.ndarray]


# -- procedural shapes ---------------------------------------------------------------------------
def _sphere(p: np.ndarray) -> np.ndarray:
    return np.linalg.norm(p, axis=-1) - 1.0


def _box(p: np.ndarray) -> np.ndarray:
    q = np.abs(p) - 1.0
    return np.linalg.norm(np.maximum(q, 0.0), axis=-1) + np.minimum(q.max(axis=-1), 0.0)


def _cylinder(p: np.ndarray) -> np.ndarray:
    d = np.stack([np.linalg.norm(p[:, :2], axis=-1) - 1.0, np.abs(p[:, 2]) - 1.0], axis=-1)
    return np.linalg.norm(np.maximum(d, 0.0), axis=-1) + np.minimum(d.max(axis=-1), 0.0)


def _torus(p: np.ndarray, tube: float = 0.35) -> np.ndarray:
    ring = np.linalg.norm(p[:, :2], axis=-1) - 1.0
    return np.sqrt(ring**2 + p[:, 2] ** 2) - tube


def _capsule(p: np.ndarray, half: float = 0.6) -> np.ndarray:
    q = p.copy()
    q[:, 2] = q[:, 2] - np.clip(q[:, 2], -half, half)
    return np.linalg.norm(q, axis=-1) - 0.5


PRIMITIVES: dict[str, SDF] = {"sphere": _sphere, "box": _box, "cylinder": _cylinder, "torus": _torus, "capsule": _capsule}


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def _placed(sdf: SDF, rng: np.random.Generator, size: float, spread: float) -> SDF:
    rotation = _random_rotation(rng) if rng.random() < 0.7 else np.eye(3)
    scale = size * rng.uniform(0.5, 1.0, size=3)
    offset = rng.uniform(-spread, spread, size=3)

    def placed(p: np.ndarray) -> np.ndarray:
        # Non-uniform scaling makes the field only approximately a distance; its sign is exact.
        return sdf(((p - offset) @ rotation) / scale) * scale.min()

    return placed


def random_csg(rng: np.random.Generator) -> SDF:
    """A random primitive, or a union / difference / intersection of two or three."""
    names = list(PRIMITIVES)
    count = rng.choice([1, 2, 3], p=[0.3, 0.45, 0.25])
    parts = [_placed(PRIMITIVES[names[rng.integers(len(names))]], rng, 0.6 if count == 1 else 0.45, 0.0 if count == 1 else 0.35) for _ in range(count)]
    field = parts[0]
    for part in parts[1:]:
        op = rng.choice(["union", "difference", "intersection"], p=[0.5, 0.35, 0.15])
        field = _combine(field, part, op)
    return field


def _combine(a: SDF, b: SDF, op: str) -> SDF:
    if op == "union":
        return lambda p: np.minimum(a(p), b(p))
    if op == "difference":
        return lambda p: np.maximum(a(p), -b(p))
    return lambda p: np.maximum(a(p), b(p))


def procedural_shape(seed: int, resolution: int = 64) -> tuple[Shape, SDF] | None:
    """A random CSG shape as (mesh in its own frame, exact signed field), or None if degenerate
    (empty, too thin to mesh, or touching the sampling box)."""
    rng = np.random.default_rng(seed)
    field = random_csg(rng)
    extent = 1.6
    values = -field(grid_points(resolution, extent).astype(np.float64)).reshape((resolution,) * 3)
    inside = values > 0
    if inside.mean() < 0.003 or inside[[0, -1]].any() or inside[:, [0, -1]].any() or inside[:, :, [0, -1]].any():
        return None
    vertices, faces = grid_to_mesh(values, level=0.0, bound=extent)
    if len(faces) < 50:
        return None
    return Shape(vertices.astype(np.float64), faces, None, f"procedural:{seed}"), field


# -- stored training shapes --------------------------------------------------------------------------
@dataclass
class ShapeSamples:
    """One normalised shape: surface (S, 6), uniform queries (U, 3) + labels, near queries (V, 3) + labels."""

    name: str
    surface: np.ndarray
    uniform: np.ndarray
    uniform_occ: np.ndarray
    near: np.ndarray
    near_occ: np.ndarray


def _near_points(surface: np.ndarray, count: int, sigma: float, rng: np.random.Generator) -> np.ndarray:
    base = surface[rng.integers(len(surface), size=count), :3]
    return (base + rng.normal(scale=sigma, size=base.shape)).astype(np.float32)


def samples_from_mesh(shape: Shape, pools: tuple[int, int, int], sigma: float, bound: float, seed: int, occupancy: SDF | None = None) -> ShapeSamples:
    """Normalise `shape` and draw the pools (surface, uniform, near). Occupancy comes from the
    exact field `occupancy` (procedural) or from the watertight mesh (corpus; TokError if open)."""
    rng = np.random.default_rng(seed)
    norm = Normalization.fit(shape.vertices, bound)
    normalised = Shape(norm.apply(shape.vertices), shape.faces, None, shape.path)
    surface = sample_surface(normalised, pools[0], seed=seed)
    uniform = rng.uniform(-1, 1, size=(pools[1], 3)).astype(np.float32)
    near = _near_points(surface, pools[2], sigma, rng)
    if occupancy is not None:
        label = lambda p: (occupancy(norm.invert(p.astype(np.float64))) < 0).astype(np.float32)
    else:
        mesh = closed_mesh(normalised)
        label = lambda p: occupancy_labels(mesh, p)
    return ShapeSamples(shape.path, surface, uniform, label(uniform), near, label(near))


def corpus_samples(paths: list[Path], pools: tuple[int, int, int], sigma: float, bound: float, seed: int = 0) -> list[ShapeSamples]:
    """Training pools of every watertight mesh in `paths`; open meshes are skipped (logged)."""
    out = []
    for i, path in enumerate(paths):
        try:
            out.append(samples_from_mesh(read_shape(path), pools, sigma, bound, seed + i))
        except TokError as e:
            logger.warning("skipping %s", e)
    return out


def procedural_samples(count: int, pools: tuple[int, int, int], sigma: float, bound: float, seed: int = 0) -> list[ShapeSamples]:
    """`count` procedural shapes from consecutive seeds starting at `seed` (degenerate ones skipped)."""
    out, s = [], seed
    while len(out) < count:
        made = procedural_shape(s)
        if made is not None:
            shape, field = made
            out.append(samples_from_mesh(shape, pools, sigma, bound, s, occupancy=field))
        s += 1
    return out


def save_samples(samples: list[ShapeSamples], path: str | os.PathLike) -> None:
    arrays = {}
    for i, s in enumerate(samples):
        for key in ("surface", "uniform", "uniform_occ", "near", "near_occ"):
            arrays[f"{i}.{key}"] = getattr(s, key)
    np.savez(path, names=np.array([s.name for s in samples]), **arrays)


def load_samples(path: str | os.PathLike) -> list[ShapeSamples]:
    with np.load(path) as data:
        names = list(data["names"])
        return [ShapeSamples(str(n), *(data[f"{i}.{k}"] for k in ("surface", "uniform", "uniform_occ", "near", "near_occ"))) for i, n in enumerate(names)]


class ShapeDataset(Dataset):
    """Items (points (N, 6), queries (U + V, 3), occupancy (U + V,)) drawn from stored pools."""

    def __init__(self, shapes: list[ShapeSamples], num_points: int, num_uniform: int, num_near: int, *, repeats: int = 1, augment: bool = True):
        if not shapes:
            raise TokError("no training shapes")
        self.shapes, self.repeats, self.augment = shapes, repeats, augment
        self.num_points, self.num_uniform, self.num_near = num_points, num_uniform, num_near

    def __len__(self) -> int:
        return len(self.shapes) * self.repeats

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        s = self.shapes[index % len(self.shapes)]
        pick = lambda n, k: torch.randint(n, (k,)) if n < k else torch.randperm(n)[:k]
        points = torch.from_numpy(s.surface)[pick(len(s.surface), self.num_points)]
        u, v = pick(len(s.uniform), self.num_uniform), pick(len(s.near), self.num_near)
        queries = torch.cat([torch.from_numpy(s.uniform)[u], torch.from_numpy(s.near)[v]])
        occupancy = torch.cat([torch.from_numpy(s.uniform_occ)[u], torch.from_numpy(s.near_occ)[v]])
        if self.augment:
            perm, signs = torch.randperm(3), torch.randint(0, 2, (3,)) * 2.0 - 1.0
            points = torch.cat([points[:, :3][:, perm] * signs, points[:, 3:][:, perm] * signs], dim=1)
            queries = queries[:, perm] * signs
        return points, queries, occupancy
