"""3D shapes: read meshes and point clouds, normalise them, sample them, write meshes.

Meshes (OBJ, PLY, STL, GLB/GLTF, OFF) and point clouds (PLY without faces, XYZ text, NPY) are
read with trimesh (numpy for XYZ/NPY). A shape tokenizer sees a normalised copy: the bounding
box is centred at the origin and its longest side scaled to span [-bound, bound] (the model's
query cube is [-1, 1]^3; `bound` < 1 leaves a margin for marching cubes). The `Normalization`
is recorded in the `.tok` header so decoding puts the mesh back at its original place and size.

Occupancy labels (inside = 1) need a closed surface: `occupancy_labels` refuses a mesh that is
not watertight after merging duplicate vertices and filling simple holes, with a TokError. Open
meshes can still be *encoded* (only surface samples are needed), not used for training labels.
Mesh extraction from an occupancy grid is scikit-image's marching cubes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TokError
from ..io import atomic_path

MESH_EXTENSIONS = (".obj", ".ply", ".stl", ".glb", ".gltf", ".off")
POINT_CLOUD_EXTENSIONS = (".ply", ".xyz", ".npy")
SHAPE_EXTENSIONS = tuple(dict.fromkeys(MESH_EXTENSIONS + POINT_CLOUD_EXTENSIONS))
SHAPE_WRITE_EXTENSIONS = (".ply", ".obj", ".glb")


def _trimesh():
    import trimesh

    return trimesh


@dataclass
class Shape:
    """A mesh (`faces` set) or a point cloud (`faces` None; `normals` per point when known)."""

    vertices: np.ndarray  # (V, 3) float64
    faces: np.ndarray | None = None  # (F, 3) int64
    normals: np.ndarray | None = None  # (V, 3) point normals of a point cloud
    path: str = ""

    @property
    def is_mesh(self) -> bool:
        return self.faces is not None

    def to_trimesh(self):
        if not self.is_mesh:
            raise TokError(f"{self.path}: a point cloud, not a mesh")
        return _trimesh().Trimesh(self.vertices, self.faces, process=False)


@dataclass(frozen=True)
class Normalization:
    """normalized = (original - center) * scale; `invert` undoes it."""

    center: tuple[float, float, float]
    scale: float

    @classmethod
    def fit(cls, vertices: np.ndarray, bound: float = 0.9) -> Normalization:
        low, high = vertices.min(axis=0), vertices.max(axis=0)
        extent = float((high - low).max())
        if not np.isfinite(extent) or extent <= 0:
            raise ValueError("degenerate bounding box")
        return cls(tuple(float(c) for c in (low + high) / 2), 2 * bound / extent)

    def apply(self, points: np.ndarray) -> np.ndarray:
        return (points - np.asarray(self.center)) * self.scale

    def invert(self, points: np.ndarray) -> np.ndarray:
        return points / self.scale + np.asarray(self.center)

    def to_dict(self) -> dict[str, Any]:
        return {"center": list(self.center), "scale": self.scale}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalization:
        return cls(tuple(float(c) for c in d["center"]), float(d["scale"]))


def _check_vertices(vertices: np.ndarray, path: Path, what: str) -> np.ndarray:
    vertices = np.asarray(vertices, dtype=np.float64)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) == 0:
        raise TokError(f"{path}: empty {what} (no vertices)")
    if not np.isfinite(vertices).all():
        raise TokError(f"{path}: {what} has NaN or infinite vertex coordinates")
    if float(np.ptp(vertices, axis=0).max()) <= 0:
        raise TokError(f"{path}: {what} is a single point (zero-size bounding box)")
    return vertices


def _ply_normals(cloud) -> np.ndarray | None:
    """Per-point normals of a PLY point cloud (nx, ny, nz properties), if the file has them."""
    raw = cloud.metadata.get("_ply_raw", {}).get("vertex", {}).get("data")
    if raw is None or raw.dtype.names is None or not {"nx", "ny", "nz"} <= set(raw.dtype.names):
        return None
    return np.stack([raw["nx"], raw["ny"], raw["nz"]], axis=1).astype(np.float64).reshape(-1, 3)


def _read_array(path: Path) -> np.ndarray:
    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, allow_pickle=False)
        return np.loadtxt(path, ndmin=2, comments="#")
    except (OSError, ValueError) as e:
        raise TokError(f"{path}: cannot read point cloud ({str(e).splitlines()[0]})") from None


def read_shape(path: str | os.PathLike) -> Shape:
    """Read a mesh or point cloud; every problem is a TokError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise TokError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in SHAPE_EXTENSIONS:
        raise TokError(f"{path}: not a 3D shape file (accepted: {', '.join(SHAPE_EXTENSIONS)})")
    if suffix in (".xyz", ".npy"):
        data = _read_array(path)
        if data.ndim != 2 or data.shape[1] not in (3, 6):
            raise TokError(f"{path}: expected an (N, 3) or (N, 6) array of points (xyz, optional normals), got shape {data.shape}")
        normals = data[:, 3:6].astype(np.float64) if data.shape[1] == 6 else None
        return Shape(_check_vertices(data[:, :3], path, "point cloud"), None, normals, str(path))
    trimesh = _trimesh()
    try:
        loaded = trimesh.load(str(path), force="mesh" if suffix in (".glb", ".gltf", ".obj") else None, process=False)
    except Exception as e:  # noqa: BLE001 - trimesh raises many types for malformed files
        raise TokError(f"{path}: cannot read 3D file ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    if isinstance(loaded, trimesh.Scene):
        loaded = loaded.to_geometry() if loaded.geometry else trimesh.Trimesh()
    if isinstance(loaded, trimesh.PointCloud):
        vertices = _check_vertices(loaded.vertices, path, "point cloud")
        return Shape(vertices, None, _ply_normals(loaded), str(path))
    if not isinstance(loaded, trimesh.Trimesh):
        raise TokError(f"{path}: holds no mesh or point cloud ({type(loaded).__name__})")
    if len(loaded.faces) == 0:
        if len(loaded.vertices) == 0:
            raise TokError(f"{path}: empty mesh (no vertices)")
        return Shape(_check_vertices(loaded.vertices, path, "point cloud"), None, None, str(path))
    vertices = _check_vertices(loaded.vertices, path, "mesh")
    return Shape(vertices, np.asarray(loaded.faces, dtype=np.int64), None, str(path))


def estimate_normals(points: np.ndarray, neighbours: int = 16) -> np.ndarray:
    """Unit normals of a point cloud: smallest principal axis of each point's k nearest
    neighbours (scipy KD-tree), flipped to point away from the centroid (right for star-shaped
    objects; a point cloud with stored normals never goes through this)."""
    from scipy.spatial import cKDTree

    k = min(neighbours, len(points))
    _, index = cKDTree(points).query(points, k=k)
    local = points[index] - points[index].mean(axis=1, keepdims=True)  # (N, k, 3)
    _, vectors = np.linalg.eigh(np.einsum("nki,nkj->nij", local, local))
    normals = vectors[:, :, 0]  # eigenvector of the smallest eigenvalue
    outward = points - points.mean(axis=0)
    normals *= np.where((normals * outward).sum(axis=1, keepdims=True) < 0, -1.0, 1.0)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def sample_surface(shape: Shape, num_points: int, seed: int = 0) -> np.ndarray:
    """(num_points, 6) float32: positions and unit normals on the surface.

    Meshes are sampled uniformly by area (any triangle count works). Point clouds are
    subsampled without replacement, so they need at least `num_points` points (the rule: a
    cloud with fewer points than the model samples is refused; upsampling would duplicate points).
    """
    rng = np.random.default_rng(seed)
    if shape.is_mesh:
        mesh = shape.to_trimesh()
        if float(mesh.area) <= 0:
            raise TokError(f"{shape.path}: mesh has zero surface area")
        points, face_index = _trimesh().sample.sample_surface(mesh, num_points, seed=int(rng.integers(2**31)))
        normals = mesh.face_normals[face_index]
    else:
        if len(shape.vertices) < num_points:
            raise TokError(f"{shape.path}: point cloud has {len(shape.vertices)} points, fewer than the {num_points} the model samples")
        normals = shape.normals if shape.normals is not None else estimate_normals(shape.vertices)
        index = rng.choice(len(shape.vertices), num_points, replace=False)
        points, normals = shape.vertices[index], normals[index]
    normals = normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    return np.concatenate([points, normals], axis=1).astype(np.float32)


def closed_mesh(shape: Shape):
    """A watertight trimesh of `shape` (duplicate vertices merged, simple holes filled), or a TokError."""
    trimesh = _trimesh()
    mesh = shape.to_trimesh()
    mesh.merge_vertices()
    if not mesh.is_watertight:
        trimesh.repair.fill_holes(mesh)
    if not mesh.is_watertight:
        raise TokError(f"{shape.path}: mesh is not watertight, so inside/outside (occupancy) is undefined; close it or leave it out of training")
    if mesh.volume < 0:
        mesh.invert()  # inward-facing winding
    return mesh


def occupancy_labels(mesh, points: np.ndarray) -> np.ndarray:
    """1.0 where `points` (N, 3) lie inside the watertight `mesh` (from `closed_mesh`), else 0.0."""
    return mesh.contains(points).astype(np.float32)


def occupancy_queries(mesh, num_uniform: int, num_near: int, sigma: float = 0.01, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Training queries: `num_uniform` points uniform in [-1, 1]^3 plus `num_near` surface points
    jittered by N(0, sigma^2) per axis; returns (points (N, 3), occupancy (N,)) as float32."""
    rng = np.random.default_rng(seed)
    uniform = rng.uniform(-1.0, 1.0, size=(num_uniform, 3))
    surface, _ = _trimesh().sample.sample_surface(mesh, num_near, seed=int(rng.integers(2**31)))
    near = surface + rng.normal(scale=sigma, size=surface.shape)
    points = np.concatenate([uniform, near]).astype(np.float32)
    return points, occupancy_labels(mesh, points)


def grid_points(resolution: int, bound: float = 1.0) -> np.ndarray:
    """(G^3, 3) cell-centre-free lattice points linspace(-bound, bound, G) in x, y, z ('ij' order)."""
    axis = np.linspace(-bound, bound, resolution, dtype=np.float32)
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)


def grid_to_mesh(values: np.ndarray, level: float = 0.0, bound: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes (scikit-image) on a (G, G, G) field sampled at `grid_points(G, bound)`.

    The surface is where `values` crosses `level` (0 for logits, 0.5 for probabilities); faces
    are wound so normals point outwards (values larger inside). Returns (vertices (V, 3) in the
    grid's coordinates, faces (F, 3)); an empty surface (all inside or all outside) gives empty arrays.
    """
    from skimage.measure import marching_cubes

    values = np.asarray(values, dtype=np.float32)
    size = values.shape[0]
    if values.min() >= level or values.max() <= level:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64)
    spacing = 2 * bound / (size - 1)
    vertices, faces, _, _ = marching_cubes(values, level=level, spacing=(spacing,) * 3)
    # skimage winds faces for values increasing outwards; ours increase inwards.
    return (vertices - bound).astype(np.float32), faces[:, ::-1].astype(np.int64).copy()


def write_mesh(vertices: np.ndarray, faces: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a triangle mesh as PLY, OBJ or GLB (by suffix), atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SHAPE_WRITE_EXTENSIONS:
        raise TokError(f"{path}: cannot write meshes as {suffix or 'a file without suffix'} (use {', '.join(SHAPE_WRITE_EXTENSIONS)})")
    mesh = _trimesh().Trimesh(np.asarray(vertices, np.float64), np.asarray(faces, np.int64), process=False)
    with atomic_path(path) as tmp:
        mesh.export(str(tmp), file_type=suffix[1:])
    return path


__all__ = [
    "MESH_EXTENSIONS", "POINT_CLOUD_EXTENSIONS", "SHAPE_EXTENSIONS", "SHAPE_WRITE_EXTENSIONS", "Normalization", "Shape",
    "closed_mesh", "estimate_normals", "grid_points", "grid_to_mesh", "occupancy_labels", "occupancy_queries", "read_shape",
    "sample_surface", "write_mesh",
]
