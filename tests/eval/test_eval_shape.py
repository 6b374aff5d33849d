"""`tok eval` / `tok.evaluate` on a shape tokenizer: tiny VAT, decoding replaced by known occupancies."""

import json

import numpy as np
import pytest
import torch
import trimesh
from click.testing import CliRunner

import tok
from tok.cli.main import main
from tok.core.media.shape import grid_points
from tok.tokenizers.vat import VAT, preset


@pytest.fixture
def shapes(tmp_path):
    """Two watertight spheres (any position and size: VAT normalises them) and a point cloud."""
    folder = tmp_path / "shapes"
    folder.mkdir()
    for name, radius, center in (("a.obj", 2.0, (5.0, 1.0, -2.0)), ("b.obj", 0.3, (0.0, 0.0, 0.0))):
        mesh = trimesh.creation.icosphere(subdivisions=4, radius=radius)
        mesh.apply_translation(center)
        mesh.export(folder / name)
    trimesh.PointCloud(trimesh.creation.icosphere(subdivisions=4).sample(3000, seed=0)).export(folder / "c.ply")
    return folder


def sphere_logits(radius: float, resolution: int) -> torch.Tensor:
    """Occupancy logits of a centred sphere on `grid_points`: positive inside."""
    points = torch.from_numpy(grid_points(resolution))
    return (radius - points.norm(dim=-1)).view(resolution, resolution, resolution)


def test_shape_run_chamfer_fscore_iou_on_known_occupancies(shapes, tmp_path, monkeypatch):
    model = VAT(preset("tiny")).eval()
    # Every shape normalises to a sphere of radius 0.9 (VAT's bound); decode the same sphere
    # (exact up to marching cubes) or a smaller one of radius 0.7.
    for radius, out in ((0.9, "same"), (0.7, "smaller")):
        monkeypatch.setattr(model, "decode", lambda tokens, r=radius, **k: sphere_logits(r, 32).expand(len(tokens), -1, -1, -1).clone())
        summary = tok.evaluate(model, shapes, ["chamfer", "fscore", "iou", "codebook"], out=tmp_path / out, batch_size=2,
                              metric_weights={"shape_points": 2000})
        m = summary["metrics"]
        assert json.loads((tmp_path / out / "metrics.json").read_text()) == summary
        assert m["chamfer"]["count"] == 3 and m["codebook"]["tokens_per_input"] == 30
        # IoU needs an inside: the point cloud is listed, not scored.
        assert m["iou"]["count"] == 2 and [f["item"] for f in m["iou"]["failed"]] == ["c.ply"]
        assert "watertight" in m["iou"]["failed"][0]["error"] or "point cloud" in m["iou"]["failed"][0]["error"]
        assert (tmp_path / out / "recon" / "a.obj.ply").is_file() and "recon/*.ply" in (tmp_path / out / "report.html").read_text()
        if out == "same":
            # What is left is the sampling floor: independent samplings of one surface (2000 points).
            assert m["chamfer"]["value"] < 0.02 and m["fscore"]["value"] > 0.2 and m["iou"]["value"] == 1.0
        else:
            # Radii 0.45 vs 0.35 in the unit cube: every point is ~0.1 from the other surface.
            assert m["chamfer"]["value"] == pytest.approx(0.1, abs=0.006)
            assert m["fscore"]["value"] < 0.02
            assert m["iou"]["value"] == pytest.approx((0.7 / 0.9) ** 3, abs=0.05)


def test_empty_decoded_surface_is_listed_and_cli_runs(shapes, tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = VAT(preset("tiny")).eval()
    weights = tmp_path / "vat.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    result = CliRunner().invoke(main, ["eval", "--model", "vat-tiny", "--weights", str(weights), "--data", str(shapes),
                                       "--device", "cpu", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())["metrics"]
    assert set(m) == {"chamfer", "fscore", "iou", "codebook"}
    logits = [np.load(tmp_path / "run" / "recon" / f"{n}.npy") for n in ("a.obj", "b.obj", "c.ply")]
    assert all(x.shape == (16, 16, 16) for x in logits)
    empty = [n for n, x in zip(("a.obj", "b.obj", "c.ply"), logits) if x.min() >= 0 or x.max() <= 0]
    assert [f["item"] for f in m["chamfer"]["failed"]] == empty and m["chamfer"]["count"] == 3 - len(empty)
