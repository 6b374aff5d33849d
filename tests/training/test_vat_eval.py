"""The held-out evaluation: the equal-bit occupancy-grid codec and the per-prefix rows."""

import math

import numpy as np
import torch

from tok.core.media.shape import grid_points
from tok.tokenizers.vat import VAT, preset
from tok.training.shapes import procedural_shape
from tok.training.vat_eval import (
    evaluate,
    grid_codec,
    grid_codec_mesh,
    grid_codec_occupancy,
    procedural_eval_shape,
    summarise,
)


def ball(points):
    return np.linalg.norm(points, axis=1) < 0.7


def test_grid_codec_uses_at_most_the_bits_and_improves_with_them():
    lattice = grid_points(32)
    truth = ball(lattice)
    ious = []
    for bits in (8, 64, 1000, 4096):
        cells, n = grid_codec(ball, bits, bound=0.9)
        assert n**3 <= bits < (n + 1) ** 3 and cells.shape == (n, n, n)
        occ = grid_codec_occupancy(cells, 0.9, lattice)
        ious.append((occ & truth).sum() / (occ | truth).sum())
    assert ious == sorted(ious) and ious[-1] > 0.9
    vertices, _ = grid_codec_mesh(grid_codec(ball, 4096, 0.9)[0], 0.9)
    assert np.abs(np.linalg.norm(vertices, axis=1) - 0.7).max() < 0.15  # 16^3 cells of 0.11


def test_procedural_shapes_are_exact_and_reproducible():
    made = procedural_shape(3)
    assert made is not None
    shape, field = made
    assert (field(shape.vertices) ** 2).max() < 0.05**2 * 4  # mesh vertices sit on the zero set
    again = procedural_shape(3)[0]
    assert np.array_equal(shape.faces, again.faces)


def test_evaluate_rows_per_prefix():
    model = VAT(preset("tiny")).eval()
    item = next(s for s in (procedural_eval_shape(seed, 0.9) for seed in range(10)) if s is not None)
    rows = evaluate(model, [item], grid=12, samples=300)
    assert len(rows) == 2 * 4
    bits = [r["bits"] for r in rows if r["codec"] == "vat"]
    assert bits == [6 * n for n in (1, 5, 14, 30)]
    grids = [r["codec"] for r in rows if r["codec"] != "vat"]
    assert grids == [f"grid{math.floor(b ** (1 / 3) + 1e-9)}" for b in bits]
    assert all(0 <= r["iou"] <= 1 and 0 <= r["fscore"] <= 1 for r in rows)
    summary = summarise(rows)
    assert len(summary) == 8 and {s["shapes"] for s in summary} == {1}
    torch.testing.assert_close(torch.tensor(summary[0]["iou"]), torch.tensor(rows[0]["iou"]))
