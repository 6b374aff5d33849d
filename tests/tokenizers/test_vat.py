"""VAT: configs and sizes, VVQ round trips and prefixes, training path, files through the API and CLI."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import trimesh
from click.testing import CliRunner

import tok
from tok.cli.main import main
from tok.core import Tokens, TokError
from tok.core.media.shape import grid_points, read_shape
from tok.core.tokens import TokenLayout
from tok.tokenizers.vat import (
    PRESETS,
    VAT,
    VATConfig,
    count_parameters,
    preset,
    save_checkpoint,
)
from tok.tokenizers.vat.model import latent_statistics
from tok.training.shapes import ShapeDataset, samples_from_mesh
from tok.training.vat import make_loss


def block_params(width: int) -> int:
    """SelfAttention (4 bias-free D x D) + SwiGLU (3 bias-free D x int(8D/3))."""
    return 4 * width * width + 3 * width * int(2 * 4 * width / 3)


def test_presets_token_counts_and_bytes():
    b = PRESETS["b"]
    assert b.scale_tokens == (1, 4, 9, 16, 25, 36, 64, 100, 169, 256) and b.num_tokens == 680
    assert b.bits_per_token == 12 and b.bytes_per_shape == 1020
    assert preset("b", codebook_size=256).bytes_per_shape == 680  # the abstract's "int8 tokens"
    assert PRESETS["small"].num_tokens == 155 and PRESETS["small"].bytes_per_shape == 155 * 10 / 8
    assert PRESETS["tiny"].num_tokens == 30
    with pytest.raises(TokError, match="last scale"):
        VATConfig(num_latents=200)
    with pytest.raises(TokError, match="unknown VAT config fields: colour"):
        VATConfig.from_dict({**PRESETS["tiny"].to_dict(), "colour": 1})
    assert VATConfig.from_dict(json.loads(json.dumps(PRESETS["small"].to_dict()))) == PRESETS["small"]


def test_paper_scale_parameter_count():
    c = PRESETS["b"]
    with torch.device("meta"):
        model = VAT(c)
    transformer = {n: p.numel() for n, p in model.named_parameters() if ".blocks." in n}
    assert sum(transformer.values()) == (c.encoder_depth + c.decoder_depth) * block_params(c.width)
    assert model.encoder.latents.shape == (256, 768) and model.decoder.triplane_tokens.shape == (3 * 32 * 32, 768)
    assert model.quantizer.codebook.shape == (4096, 32)
    assert count_parameters(model) == 144_873_889


@pytest.fixture
def tiny():
    return VAT(preset("tiny")).eval()


def test_forward_phases_and_shapes(tiny):
    points, queries = torch.randn(2, 256, 6), torch.rand(2, 100, 3) * 2 - 1
    tiny.train()
    phase_a = tiny(points, queries, quantize=False)
    assert phase_a.recon.shape == (2, 100) and set(phase_a.losses) == {"kl"}
    phase_b = tiny(points, queries, quantize=True)
    assert set(phase_b.losses) == {"kl", "vq"} and phase_b.losses["vq"] > 0
    (phase_b.recon.mean() + sum(phase_b.losses.values())).backward()
    assert tiny.encoder.latents.grad is not None
    assert tiny.quantizer.quantizer.vq._codebook.embed.grad is not None  # gradient-trained codebook
    no_vae = VAT(preset("tiny", variational=False)).train()
    assert "kl" not in no_vae(points, queries).losses


def test_encode_is_deterministic_and_ids_round_trip(tiny):
    points = torch.randn(3, 256, 6)
    tokens = tiny.encode(points)
    assert tokens.layout.kind == "scales" and tokens.shapes == [(3, 1), (3, 4), (3, 9), (3, 16)]
    assert all(torch.equal(a, b) for a, b in zip(tokens.streams, tiny.encode(points).streams))
    # ids -> latent equals the quantizer's own output on mu (eval mode).
    with torch.no_grad():
        mean, _ = tiny.posterior(points)
        z_q = tiny.quantizer.quantize(mean).z_q
    assert torch.allclose(tiny.ids_to_latent(tokens.streams), z_q, atol=1e-5)
    # Batched encoding equals one-by-one encoding.
    single = tiny.encode(points[1:2])
    assert all(torch.equal(a[1:2], b) for a, b in zip(tokens.streams, single.streams))


def test_prefix_decoding(tiny):
    tokens = tiny.encode(torch.randn(1, 256, 6))
    grids = [tiny.decode(tokens, scales=k, resolution=8) for k in range(1, 5)]
    assert all(g.shape == (1, 8, 8, 8) and torch.isfinite(g).all() for g in grids)
    assert torch.equal(grids[-1], tiny.decode(tokens, resolution=8))
    assert not torch.allclose(grids[0], grids[-1])
    inputs = tiny.quantizer.next_scale_inputs(tokens.streams)
    assert [tuple(x.shape) for x in inputs] == [(1, 8, 4), (1, 8, 9), (1, 8, 16)]
    with pytest.raises(TokError, match="has 4 scales; cannot decode the first 5"):
        tiny.decode(tokens, scales=5)
    with pytest.raises(TokError, match="pass --scales when decoding"):
        tiny.encode(torch.randn(1, 256, 6), scales=2)
    with pytest.raises(TokError, match="encodes 256 points per shape, got 100"):
        tiny.encode(torch.randn(1, 100, 6))


def test_codebook_initialised_from_latents(tiny):
    latents = torch.randn(500, 8)
    tiny.quantizer.init_codebook(latents, torch.Generator().manual_seed(0))
    codebook = tiny.quantizer.codebook
    assert codebook.shape == (64, 8)
    assert (codebook[:, None] == latents[None]).all(-1).any(1).all()  # every code is one of the latents


def test_phi_is_partially_shared_as_in_var():
    with torch.device("meta"):
        model = VAT(preset("b"))
    choice = model.quantizer.phi.choice
    assert len(choice) == 10 and choice[0] == 0 and choice[-1] == 3 and choice == sorted(choice)
    assert len(model.quantizer.phi.phis) == 4


def sphere_mesh(radius=2.0, center=(5.0, 1.0, -2.0)):
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=radius)
    mesh.apply_translation(center)
    return mesh


@pytest.fixture(scope="module")
def trained_tiny(tmp_path_factory):
    """vat-tiny fitted for 2 x 40 steps to a sphere (phase A, then VVQ), saved as a checkpoint."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("vat")
    mesh = sphere_mesh()
    path = folder / "sphere.obj"
    mesh.export(path)
    model = VAT(preset("tiny"))
    c = model.config
    shape = read_shape(path)
    samples = samples_from_mesh(shape, (1024, 1024, 1024), 0.05, c.bound, seed=0)
    data = ShapeDataset([samples], c.num_points, c.num_uniform_queries, c.num_near_queries, repeats=4, augment=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for quantize in (False, True):
        loss_fn = make_loss(c, quantize)
        model.train()
        for step in range(40):
            batch = [torch.stack(x) for x in zip(data[0], data[1])]
            loss = loss_fn(model, batch, step)["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if not quantize:
            model.eval()
            model.quantizer.init_codebook(latent_statistics(model, batch[0]))
    model.eval()
    weights = save_checkpoint(model, folder / "vat-tiny.safetensors", torch.float32)
    return path, weights


def test_training_fits_a_sphere(trained_tiny):
    path, weights = trained_tiny
    model = tok.load("vat-tiny", weights, device="cpu")
    item, _ = model.read_media(path)
    grid = model.decode(model.encode(item[None]), resolution=24)[0]
    radius = np.linalg.norm(grid_points(24), axis=1).reshape(24, 24, 24)
    truth = torch.from_numpy(radius < 0.9)
    iou = ((grid > 0) & truth).sum() / ((grid > 0) | truth).sum()
    assert iou > 0.6, f"IoU {iou:.3f}"


def test_cli_encode_decode_restores_place_and_size(trained_tiny, tmp_path):
    path, weights = trained_tiny
    runner = CliRunner()
    result = runner.invoke(main, ["encode", str(path), "-m", "vat-tiny", "--weights", str(weights), "-o", str(tmp_path / "s.tok")])
    assert result.exit_code == 0, result.output
    header = Tokens.load(tmp_path / "s.tok")
    assert header.shapes == [(1, 1), (1, 4), (1, 9), (1, 16)] and header.sources[0]["kind"] == "mesh"
    for suffix in (".ply", ".obj", ".glb"):
        out = tmp_path / f"s{suffix}"
        result = runner.invoke(main, ["decode", str(tmp_path / "s.tok"), "-o", str(out), "--weights", str(weights)])
        assert result.exit_code == 0, result.output
        decoded = read_shape(out)
        low, high = decoded.vertices.min(0), decoded.vertices.max(0)
        assert np.allclose((low + high) / 2, [5.0, 1.0, -2.0], atol=0.4)
        assert np.allclose(high - low, 4.0, atol=0.8)


def test_bad_inputs_through_the_api(trained_tiny, tmp_path, photo):
    _, weights = trained_tiny
    model = tok.load("vat-tiny", weights, device="cpu")
    with pytest.raises(TokError, match="photo.jpg: not a 3D shape file"):
        tok.encode_file(photo, model)
    foreign = Tokens([torch.zeros(1, 4, dtype=torch.long)], TokenLayout("sequence", (10,), (("n",),)), "flextok-small")
    foreign.save(tmp_path / "f.tok")
    with pytest.raises(TokError, match="made by model 'flextok-small', not 'vat-tiny'"):
        tok.decode_file(tmp_path / "f.tok", tmp_path / "f.ply", model=model)
    assert not (tmp_path / "f.ply").exists()
    result = CliRunner().invoke(main, ["encode", str(photo), "-m", "vat-tiny", "--weights", str(weights), "-o", str(tmp_path / "p.tok")])
    assert result.exit_code == 1 and "not a 3D shape file" in result.output and not (tmp_path / "p.tok").exists()


def test_weights_for_another_config_are_refused(trained_tiny):
    _, weights = trained_tiny
    with pytest.raises(TokError, match="another VAT configuration"):
        tok.load("vat-small", weights, device="cpu")


def test_loss_is_bce_plus_weighted_terms(tiny):
    c = tiny.config
    points, queries, occ = torch.randn(2, 256, 6), torch.rand(2, 50, 3) * 2 - 1, (torch.rand(2, 50) > 0.5).float()
    tiny.eval()  # no sampling noise: the loss is reproducible
    losses = make_loss(c, True)(tiny, [points, queries, occ], 0)
    logits = tiny(points, queries).recon
    assert torch.allclose(losses["bce"], F.binary_cross_entropy_with_logits(logits, occ))
    assert torch.allclose(losses["loss"], losses["bce"] + c.kl_weight * losses["kl"] + c.vq_weight * losses["vq"])


def test_next_scale_generator_learns_and_samples_decodable_tokens(trained_tiny):
    """The AR generator's next-scale pattern on VAT's 1D scales: train on one shape's tokens,
    sample greedily, get the same tokens back, decode them to a mesh."""
    from tok.generators.gpt import GPT
    from tok.generators.gpt import preset as gpt_preset
    from tok.generators.patterns import build_pattern
    from tok.generators.sampling import SamplingOptions, sample_streams

    path, weights = trained_tiny
    model = tok.load("vat-tiny", weights, device="cpu")
    tokens = model.encode(model.read_media(path)[0][None])
    pattern = build_pattern(tokens.layout, [tuple(s.shape[1:]) for s in tokens.streams])
    seq = pattern.to_sequence(tokens.streams)
    assert seq.shape == (1, 30, 1) and pattern.groups.tolist() == [0] + [1] * 4 + [2] * 9 + [3] * 16
    assert all(torch.equal(a, b) for a, b in zip(pattern.from_sequence(seq), tokens.streams))
    torch.manual_seed(0)
    gpt = GPT(gpt_preset("tiny", num_classes=1), pattern)
    optimizer = torch.optim.Adam(gpt.parameters(), lr=1e-2)
    labels = torch.zeros(4, dtype=torch.long)
    for _ in range(400):  # 200 steps left one token unlearned on an AVX2-only CPU (fp32 rounding differs)
        loss = gpt.loss(seq.expand(4, -1, -1), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    streams = sample_streams(gpt.eval(), labels[:1], options=SamplingOptions(temperature=0.0))
    assert all(torch.equal(a, b) for a, b in zip(streams, tokens.streams)), f"loss {loss.item():.3f}"
    grid = model.decode(model.make_tokens(streams))[0]
    out = model.write_media(grid, path.parent / "sampled.ply", tokens.sources[0] if tokens.sources else None)
    assert len(read_shape(out).faces) > 0


def test_codebook_initialised_per_scale(tiny):
    z = torch.randn(20, 16, 8)
    residuals = tiny.quantizer.scale_residuals(z)
    assert [tuple(r.shape) for r in residuals] == [(20, 8), (80, 8), (180, 8), (320, 8)]
    # The coarsest residual is the token average; the finest is what the coarser scales left.
    torch.testing.assert_close(residuals[0], z.mean(1))
    tiny.quantizer.init_codebook_per_scale(z, torch.Generator().manual_seed(0))
    codebook = tiny.quantizer.codebook
    for r, (start, stop) in zip(residuals, [(0, 16), (16, 32), (32, 48), (48, 64)]):
        assert (codebook[start:stop, None] == r[None]).all(-1).any(1).all()


def test_cli_prefix_decoding_and_foreign_options(trained_tiny, tmp_path):
    path, weights = trained_tiny
    runner = CliRunner()
    runner.invoke(main, ["encode", str(path), "-m", "vat-tiny", "--weights", str(weights), "-o", str(tmp_path / "s.tok")])
    result = runner.invoke(main, ["decode", str(tmp_path / "s.tok"), "--scales", "3", "-o", str(tmp_path / "c.ply"), "--weights", str(weights)])
    assert result.exit_code == 0, result.output
    assert len(read_shape(tmp_path / "c.ply").faces) > 0
    result = runner.invoke(main, ["decode", str(tmp_path / "s.tok"), "--steps", "3", "--weights", str(weights)])
    assert result.exit_code == 1 and "does not take --steps" in result.output
