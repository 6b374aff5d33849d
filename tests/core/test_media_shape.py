"""3D media: reading meshes and point clouds, normalisation, sampling, occupancy, marching cubes, writing."""

from pathlib import Path

import numpy as np
import pytest
import trimesh

from tok.core import TokError
from tok.core.media import MEDIA_EXTENSIONS, list_media
from tok.core.media.shape import (
    Normalization,
    Shape,
    closed_mesh,
    estimate_normals,
    grid_points,
    grid_to_mesh,
    occupancy_labels,
    occupancy_queries,
    read_shape,
    sample_surface,
    write_mesh,
)

DATA = Path(__file__).parents[1] / "data"


def sphere(radius=2.0, center=(5.0, 0.0, -1.0)):
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=radius)
    mesh.apply_translation(center)
    return mesh


@pytest.mark.parametrize("suffix", [".obj", ".ply", ".stl", ".off", ".glb"])
def test_mesh_formats_read_back(tmp_path, suffix):
    mesh = trimesh.creation.box(extents=(1.0, 2.0, 3.0))
    path = tmp_path / f"box{suffix}"
    mesh.export(path)
    shape = read_shape(path)
    assert shape.is_mesh and len(shape.faces) == 12
    assert np.allclose(np.ptp(shape.vertices, axis=0), [1.0, 2.0, 3.0], atol=1e-5)


def test_corpus_stl_and_listing():
    shape = read_shape(DATA / "openscad_example004.stl")
    assert shape.is_mesh and len(shape.faces) == 880
    assert closed_mesh(shape).is_watertight
    assert ".stl" in MEDIA_EXTENSIONS["shape"] and ".npy" in MEDIA_EXTENSIONS["shape"]
    assert DATA / "openscad_example004.stl" in list_media(DATA, "shape")


def test_point_clouds(tmp_path):
    points = sphere(1.0, (0, 0, 0)).vertices
    np.savetxt(tmp_path / "c.xyz", points)
    cloud = read_shape(tmp_path / "c.xyz")
    assert not cloud.is_mesh and cloud.normals is None and len(cloud.vertices) == len(points)
    # Estimated normals of a sphere point outwards.
    normals = estimate_normals(cloud.vertices)
    assert (normals * cloud.vertices).sum(1).min() > 0.9
    with_normals = np.concatenate([points, -points], axis=1)  # deliberately inward: stored normals win
    np.save(tmp_path / "c.npy", with_normals)
    samples = sample_surface(read_shape(tmp_path / "c.npy"), 100)
    assert samples.shape == (100, 6) and ((samples[:, 3:] * samples[:, :3]).sum(1) < -0.99).all()
    trimesh.PointCloud(points).export(tmp_path / "c.ply")
    ply = read_shape(tmp_path / "c.ply")
    assert not ply.is_mesh and len(ply.vertices) == len(points)


def test_normalization_round_trip():
    mesh = sphere()
    norm = Normalization.fit(mesh.vertices, bound=0.9)
    inside = norm.apply(mesh.vertices)
    assert np.allclose(inside.max(0), 0.9, atol=1e-6) and np.allclose(inside.min(0), -0.9, atol=1e-6)
    assert np.allclose(norm.invert(inside), mesh.vertices)
    assert Normalization.from_dict(norm.to_dict()) == norm


def test_surface_samples_lie_on_the_sphere():
    shape = Shape(sphere(1.0, (0, 0, 0)).vertices, sphere(1.0, (0, 0, 0)).faces)
    samples = sample_surface(shape, 500, seed=3)
    radius = np.linalg.norm(samples[:, :3], axis=1)
    assert samples.dtype == np.float32 and np.abs(radius - 1).max() < 0.02
    assert np.allclose(np.linalg.norm(samples[:, 3:], axis=1), 1, atol=1e-5)
    assert ((samples[:, 3:] * samples[:, :3]).sum(1) > 0.95).all()
    assert np.array_equal(samples, sample_surface(shape, 500, seed=3))


def test_occupancy_matches_the_analytic_sphere():
    mesh = closed_mesh(Shape(sphere(0.8, (0, 0, 0)).vertices, sphere(0.8, (0, 0, 0)).faces))
    points, occ = occupancy_queries(mesh, 2000, 1000, sigma=0.01, seed=0)
    assert points.shape == (3000, 3) and occ.shape == (3000,)
    radius = np.linalg.norm(points, axis=1)
    clear = np.abs(radius - 0.8) > 0.02  # the icosphere is a polyhedron: skip the boundary shell
    assert np.array_equal(occ[clear] > 0.5, radius[clear] < 0.8)
    assert 0.3 < occ[2000:].mean() < 0.7  # near-surface queries straddle the surface


def test_marching_cubes_recovers_a_sphere_with_outward_faces():
    pts = grid_points(32)
    values = (0.6 - np.linalg.norm(pts, axis=1)).reshape(32, 32, 32)  # positive inside
    vertices, faces = grid_to_mesh(values, level=0.0)
    assert np.abs(np.linalg.norm(vertices, axis=1) - 0.6).max() < 0.02
    mesh = trimesh.Trimesh(vertices, faces)
    assert mesh.volume > 0 and abs(mesh.volume - 4 / 3 * np.pi * 0.6**3) < 0.02
    assert grid_to_mesh(np.ones((8, 8, 8)))[1].shape == (0, 3)


@pytest.mark.parametrize("suffix", [".ply", ".obj", ".glb"])
def test_write_mesh(tmp_path, suffix):
    mesh = sphere()
    out = write_mesh(mesh.vertices, mesh.faces, tmp_path / f"out{suffix}")
    back = read_shape(out)
    assert len(back.faces) == len(mesh.faces)
    assert np.allclose(back.vertices.mean(0), mesh.vertices.mean(0), atol=1e-4)
    assert [p.name for p in tmp_path.iterdir()] == [f"out{suffix}"]  # no temporary file left


def test_bad_inputs(tmp_path):
    (tmp_path / "empty.obj").write_text("# nothing\n")
    with pytest.raises(TokError, match="empty.obj: empty"):
        read_shape(tmp_path / "empty.obj")
    (tmp_path / "nan.obj").write_text("v 0 0 0\nv 1 0 0\nv nan 1 0\nf 1 2 3\n")
    with pytest.raises(TokError, match="nan.obj: .*NaN"):
        read_shape(tmp_path / "nan.obj")
    np.save(tmp_path / "few.npy", np.random.rand(10, 3))
    with pytest.raises(TokError, match="few.npy: point cloud has 10 points, fewer than the 64"):
        sample_surface(read_shape(tmp_path / "few.npy"), 64)
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    with pytest.raises(TokError, match="photo.png: not a 3D shape file"):
        read_shape(tmp_path / "photo.png")
    with pytest.raises(TokError, match="cannot write meshes as .stl"):
        write_mesh(np.zeros((3, 3)), np.array([[0, 1, 2]]), tmp_path / "x.stl")
    assert not (tmp_path / "x.stl").exists()


def test_open_mesh_has_no_occupancy(tmp_path):
    mesh = trimesh.creation.icosphere(subdivisions=2)
    keep = mesh.triangles_center[:, 2] < 0.5  # cut off the top cap: a large hole
    open_mesh = trimesh.Trimesh(mesh.vertices, mesh.faces[keep])
    open_mesh.export(tmp_path / "bowl.ply")
    shape = read_shape(tmp_path / "bowl.ply")
    assert sample_surface(shape, 50).shape == (50, 6)  # encoding only needs the surface
    with pytest.raises(TokError, match="bowl.ply: mesh is not watertight"):
        closed_mesh(shape)
    assert occupancy_labels(closed_mesh(Shape(mesh.vertices, mesh.faces)), np.zeros((1, 3))).tolist() == [1.0]
