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


def _png_data_uri(image: Tensor) -> str:
    array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    img = Image.fromarray(array)
    img.thumbnail((THUMB, THUMB))
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


def write_report(run: Run, summary: dict[str, Any]) -> None:
    rows = []
    for name, m in summary["metrics"].items():
        value = m.get("value")
        extra = f" ± {m['std']:.4g}" if "std" in m else ""
        settings = ", ".join(f"{k}={v}" for k, v in m.get("settings", {}).items())
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{'-' if value is None else f'{value:.4f}'}{extra}</td>"
                    f"<td>{m.get('count', '')}</td><td class=s>{html.escape(settings)}</td></tr>")
    grid = []
    for path in run.files[:GRID_ITEMS]:
        x, _ = run.model_input([path])
        original = run.tokenizer.postprocess(x)[0].float().cpu()
        _, recon, perturbed = run.paths(path)
        cells = [_png_data_uri(original), _png_data_uri(read_image(recon)[0])]
        if perturbed.exists():
            cells.append(_png_data_uri(read_image(perturbed)[0]))
        grid.append("<tr><td>" + html.escape(path.name) + "</td>" + "".join(f'<td><img src="{c}"></td>' for c in cells) + "</tr>")
    has_perturbed = any(run.paths(p)[2].exists() for p in run.files[:1])
    histogram = ""
    if "codebook" in summary["metrics"]:
        counts = None
        for path in run.files:
            tokens = Tokens.load(run.paths(path)[0])
            c = torch.bincount(tokens.streams[0].flatten().long(), minlength=tokens.layout.vocab_sizes[0])
            counts = c if counts is None else counts + c
        histogram = "<h2>Codebook usage</h2>" + usage_svg(counts)
    ds = summary["dataset"]
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>tok eval: {html.escape(summary['model'])}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top}}.s{{font-size:80%;color:#555}}</style>
</head><body><h1>{html.escape(summary['model'])}</h1>
<p>weights {html.escape(summary['weights_digest'] or 'unknown')} · dataset {html.escape(ds['path'])} ({ds['count']} images, digest {ds['digest']})
· options {html.escape(str(summary['options']))}</p>
<h2>Metrics</h2><table><tr><th>metric</th><th>value</th><th>images</th><th>settings</th></tr>{''.join(rows)}</table>
<h2>Originals vs reconstructions</h2><table><tr><th>file</th><th>original</th><th>reconstruction</th>{'<th>perturbed (pFID)</th>' if has_perturbed else ''}</tr>{''.join(grid)}</table>
{histogram}</body></html>
"""
    with atomic_path(run.folder / "report.html") as tmp:
        tmp.write_text(page)
