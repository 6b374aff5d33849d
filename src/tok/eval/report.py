"""`RUN/report.html`: one self-contained page (inline PNG thumbnails and SVG, no scripts)."""

from __future__ import annotations

import base64
import html
import io
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image
from torch import Tensor

from ..core.io import atomic_path
from ..core.media import read_image
from ..core.tokens import Tokens

if TYPE_CHECKING:
    from .run import Run

GRID_ITEMS = 8
THUMB = 192


def _png_data_uri(image: Tensor, size: tuple[int, int] = (THUMB, THUMB)) -> str:
    array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    img = Image.fromarray(array)
    img.thumbnail(size)
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def usage_svg(counts: Tensor, width: int = 640, height: int = 200) -> str:
    """Code frequencies sorted from most to least used (log scale), plus the share of unused codes."""
    ordered = torch.sort(counts.double(), descending=True).values
    used = int((ordered > 0).sum())
    points = min(512, ordered.numel())
    idx = torch.linspace(0, ordered.numel() - 1, points).round().long()
    values = torch.log10(ordered[idx] + 1)
    top = float(values.max()) or 1.0
    coords = " ".join(f"{i * width / max(points - 1, 1):.1f},{height - float(v) / top * (height - 10):.1f}" for i, v in enumerate(values))
    cut = used / ordered.numel() * width
    return (
        f'<svg width="{width}" height="{height + 20}" xmlns="http://www.w3.org/2000/svg" style="background:#fafafa">'
        f'<polyline fill="none" stroke="#3366cc" stroke-width="1.5" points="{coords}"/>'
        f'<line x1="{cut:.1f}" y1="0" x2="{cut:.1f}" y2="{height}" stroke="#cc3333" stroke-dasharray="4"/>'
        f'<text x="4" y="{height + 15}" font-size="12">codes sorted by frequency (log10(count+1)); red: {used} of {ordered.numel()} used</text></svg>'
    )


def spectrogram_image(wave: Tensor, rate: int, top_db: float = 80.0, size: tuple[int, int] = (192, 640)) -> Tensor:
    """(3, F, T) picture of a clip's log-magnitude STFT (low frequencies at the bottom), dB relative
    to the clip's peak over `top_db`; 512-point FFT up to 16 kHz, 1024 above; resized to `size` (H, W)."""
    n_fft = 512 if rate <= 16000 else 1024
    spec = torch.stft(wave.float().reshape(-1), n_fft, hop_length=n_fft // 4, window=torch.hann_window(n_fft), return_complex=True).abs()
    db = 20 * torch.log10(spec.clamp(min=1e-8))
    v = ((db - db.max() + top_db) / top_db).clamp(0, 1).flip(0)
    # A dark-to-bright colour ramp (black -> purple -> orange -> yellow) makes quiet bands readable.
    picture = torch.stack([(1.6 * v).clamp(0, 1), (1.6 * v - 0.6).clamp(0, 1), (0.8 * v - 0.8 * (v - 0.5).clamp(min=0) * 2).clamp(0, 1)])
    # A fixed wide picture whatever the clip's length, so originals and reconstructions line up.
    return torch.nn.functional.interpolate(picture[None], size=size, mode="bilinear", align_corners=False)[0].clamp(0, 1)


def frame_strip(frames: Tensor, count: int = 8) -> Tensor:
    """Up to `count` evenly spaced frames of a (F, 3, H, W) clip side by side: (3, H, count * W)."""
    idx = torch.linspace(0, frames.shape[0] - 1, min(count, frames.shape[0])).round().long()
    return torch.cat(list(frames[idx]), dim=-1)


def media_rows(run: Run) -> list[str]:
    """Report rows of audio (spectrograms) and video (frame strips) runs."""
    from .media import audio_pair, load_frames, reference_frames

    rows = []
    for path in run.files[:GRID_ITEMS]:
        if run.tokenizer.modality == "audio":
            ref, rec, rate = audio_pair(run, path)
            cells = [_png_data_uri(spectrogram_image(x, rate), (640, 256)) for x in (ref, rec)]
        else:
            cells = [_png_data_uri(frame_strip(x), (1024, 160)) for x in (reference_frames(run, path), load_frames(run.paths(path)[1]))]
        rows.append("<tr><td>" + html.escape(path.name) + "</td>" + "".join(f'<td><img src="{c}"></td>' for c in cells) + "</tr>")
    return rows


def write_report(run: Run, summary: dict[str, Any]) -> None:
    rows = []
    for name, m in summary["metrics"].items():
        value = m.get("value")
        extra = f" ± {m['std']:.4g}" if "std" in m else ""
        settings = ", ".join(f"{k}={v}" for k, v in m.get("settings", {}).items())
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{'-' if value is None else f'{value:.4f}'}{extra}</td>"
                    f"<td>{m.get('count', '')}</td><td class=s>{html.escape(settings)}</td></tr>")
    grid = []
    for path in run.files[:GRID_ITEMS] if run.tokenizer.modality == "image" else []:
        original = run.tokenizer.postprocess(run.tokenizer.read_media(path)[0][None])[0].float().cpu()
        _, recon, perturbed = run.paths(path)
        cells = [_png_data_uri(original), _png_data_uri(read_image(recon)[0])]
        if perturbed.exists():
            cells.append(_png_data_uri(read_image(perturbed)[0]))
        grid.append("<tr><td>" + html.escape(path.name) + "</td>" + "".join(f'<td><img src="{c}"></td>' for c in cells) + "</tr>")
    has_perturbed = any(run.paths(p)[2].exists() for p in run.files[:1])
    picture_kind = {"image": "", "audio": " (spectrograms)", "video": " (frames)", "shape": ""}[run.tokenizer.modality]
    if run.tokenizer.modality in ("audio", "video"):
        grid = media_rows(run)
    histogram = ""
    if "codebook" in summary["metrics"]:
        counts = None
        for path in run.files:
            tokens = Tokens.load(run.paths(path)[0])  # stored without batch padding
            c = torch.bincount(tokens.streams[0].flatten().long(), minlength=tokens.layout.vocab_sizes[0])
            counts = c if counts is None else counts + c
        histogram = "<h2>Codebook usage</h2>" + usage_svg(counts)
    pictures = (f"<h2>Originals vs reconstructions{picture_kind}</h2><table><tr><th>file</th><th>original</th><th>reconstruction</th>"
                f"{'<th>perturbed (pFID)</th>' if has_perturbed else ''}</tr>{''.join(grid)}</table>")
    if run.tokenizer.modality == "shape":
        pictures = "<h2>Reconstructions</h2><p>meshes (marching cubes of the decoded occupancy) in recon/*.ply</p>"
    ds = summary["dataset"]
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>tok eval: {html.escape(summary['model'])}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top}}.s{{font-size:80%;color:#555}}</style>
</head><body><h1>{html.escape(summary['model'])}</h1>
<p>weights {html.escape(summary['weights_digest'] or 'unknown')} · dataset {html.escape(ds['path'])} ({ds['count']} items, digest {ds['digest']})
· options {html.escape(str(summary['options']))}</p>
<h2>Metrics</h2><table><tr><th>metric</th><th>value</th><th>items</th><th>settings</th></tr>{''.join(rows)}</table>
{pictures}
{histogram}</body></html>
"""
    with atomic_path(run.folder / "report.html") as tmp:
        tmp.write_text(page)
