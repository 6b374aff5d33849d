"""How a long video is cut into clips, and its latent frames back into clips.

A video of F frames is encoded as consecutive, independent clips of `clip_frames` frames
(17 for the releases: 1 + 4 x 4). The last clip keeps its r remaining frames, padded by
repeating its last frame to 1 + temporal_patch * ceil((r - 1) / temporal_patch) frames. Each
full clip gives `1 + (clip_frames - 1) / temporal_patch` latent frames and the last one at most
that many, so the latent frames split back into clips without any recorded boundaries.
"""

from __future__ import annotations


def clip_spans(num_frames: int, clip_frames: int, temporal_patch: int) -> list[tuple[int, int, int]]:
    """(start, frames taken, frames after padding) for each clip of a `num_frames` video."""
    if num_frames < 1:
        raise ValueError("a video needs at least one frame")
    spans = []
    for start in range(0, num_frames, clip_frames):
        length = min(clip_frames, num_frames - start)
        padded = 1 + temporal_patch * -(-(length - 1) // temporal_patch)
        spans.append((start, length, padded))
    return spans


def latent_spans(num_latent: int, per_clip: int) -> list[tuple[int, int]]:
    """(start, length) of each clip's latent frames."""
    return [(start, min(per_clip, num_latent - start)) for start in range(0, num_latent, per_clip)]


def decoded_frames(num_latent: int, per_clip: int, temporal_patch: int) -> int:
    """Frames the decoder returns for `num_latent` latent frames (padding included)."""
    return sum(1 + temporal_patch * (n - 1) for _, n in latent_spans(num_latent, per_clip))
