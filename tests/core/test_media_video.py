"""Video reading, clip sampling, fitting and writing on tiny videos made here."""

import pytest
import torch

from tok.core import TokError
from tok.core.media import (
    MEDIA_EXTENSIONS,
    fit_frames,
    list_media,
    read_video,
    write_image,
    write_video,
)


def ramp_video(frames: int = 12, height: int = 32, width: int = 48) -> torch.Tensor:
    """Frames whose brightness encodes their index (0.05 apart), so sampling is checkable after lossy coding."""
    levels = torch.linspace(0.1, 0.1 + 0.05 * (frames - 1), frames)
    video = levels.view(-1, 1, 1, 1).expand(frames, 3, height, width).clone()
    video[:, 0, :, : width // 2] *= 0.5  # some structure, so the codec does real work
    return video


def frame_levels(video: torch.Tensor) -> list[int]:
    """Recover each frame's index from its mean brightness of the right half's green channel."""
    half = video.shape[-1] // 2
    return [round((float(v[1, :, half:].mean()) - 0.1) / 0.05) for v in video]


@pytest.fixture
def mp4(tmp_path):
    return write_video(ramp_video(), tmp_path / "ramp.mp4", fps=10)


def test_mp4_round_trip_keeps_frames_rate_and_size(mp4):
    video, info = read_video(mp4)
    assert video.shape == (12, 3, 32, 48) and video.dtype == torch.float32
    assert 0 <= float(video.min()) and float(video.max()) <= 1
    assert (info.num_frames, info.total_frames, info.fps, info.width, info.height) == (12, 12, 10.0, 48, 32)
    assert frame_levels(video) == list(range(12))
    assert (video - ramp_video()).abs().mean() < 0.02
    assert info.to_dict()["media"] == "video"


def test_clip_sampling_start_stride_and_fps(mp4):
    clip, info = read_video(mp4, start=2, num_frames=4, stride=3)
    assert frame_levels(clip) == [2, 5, 8, 11]
    assert info.fps == pytest.approx(10 / 3) and (info.start, info.stride) == (2, 3)
    clip, info = read_video(mp4, num_frames=3, fps=5)  # every second frame
    assert frame_levels(clip) == [0, 2, 4] and info.fps == 5
    clip, _ = read_video(mp4, num_frames=4, fps=20)  # nearest frames repeat, never interpolate
    assert frame_levels(clip) == [0, 1, 1, 2]


def test_gif_and_frame_folder(tmp_path):
    gif = write_video(ramp_video(5), tmp_path / "ramp.gif", fps=10)
    video, info = read_video(gif)
    assert video.shape == (5, 3, 32, 48) and info.format == "gif"
    assert frame_levels(video) == list(range(5))
    folder = tmp_path / "frames"
    for i, frame in enumerate(ramp_video(6)):
        write_image(frame, folder / f"{i:02d}.png")
    clip, info = read_video(folder, start=1, num_frames=2, stride=2)
    assert frame_levels(clip) == [1, 3] and info.format == "frames" and info.total_frames == 6


def test_fit_frames_resizes_shorter_side_and_crops_the_center():
    video = torch.zeros(2, 3, 40, 80)
    video[..., 20:60] = 1.0  # the center square is white
    fitted = fit_frames(video, 16)
    assert fitted.shape == (2, 3, 16, 16)
    assert float(fitted[..., 1:-1].min()) > 0.99 and float(fitted.min()) > 0.9  # only the edge columns blur


def test_odd_sizes_are_padded_for_h264(tmp_path):
    path = write_video(torch.rand(3, 3, 17, 21), tmp_path / "odd.mp4", fps=8)
    video, info = read_video(path)
    assert video.shape == (3, 3, 18, 22) and info.fps == 8


def test_errors_name_the_file_and_the_problem(tmp_path, mp4):
    with pytest.raises(TokError, match="no such file"):
        read_video(tmp_path / "missing.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(TokError, match="empty.mp4: empty file"):
        read_video(empty)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video at all" * 20)
    with pytest.raises(TokError, match="junk.mp4: cannot decode video"):
        read_video(junk)
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(mp4.read_bytes()[:200])
    with pytest.raises(TokError, match="cut.mp4"):
        read_video(truncated)
    with pytest.raises(TokError, match="clip too short: 4 frames from frame 8 with stride 1, 17 asked"):
        read_video(mp4, start=8, num_frames=17)
    with pytest.raises(TokError, match="no video frames from frame 50"):
        read_video(mp4, start=50)
    one = write_video(ramp_video(1), tmp_path / "one.mp4", fps=10)
    with pytest.raises(TokError, match="one.mp4: 1 frame, but a clip of at least 2 frames is needed"):
        read_video(one, min_frames=2)
    with pytest.raises(TokError, match="either a frame stride or a target fps"):
        read_video(mp4, stride=2, fps=5)
    with pytest.raises(TokError, match="unsupported video suffix"):
        write_video(ramp_video(2), tmp_path / "out.avi")


def test_failed_write_leaves_no_partial_file(tmp_path):
    with pytest.raises(ValueError):
        write_video(torch.rand(2, 4, 8, 8), tmp_path / "bad.mp4")
    assert list(tmp_path.iterdir()) == []


def test_video_modality_lists_videos_and_images(tmp_path, mp4):
    (tmp_path / "still.png").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in list_media(tmp_path, "video")] == ["ramp.mp4", "still.png"]
    assert {".mp4", ".webm", ".mkv", ".avi", ".gif"} <= set(MEDIA_EXTENSIONS["video"])


def test_fit_while_decoding_keeps_the_source_size_in_the_info(mp4):
    video, info = read_video(mp4, fit=16)
    assert video.shape == (12, 3, 16, 16) and (info.width, info.height) == (48, 32)
    torch.testing.assert_close(video, fit_frames(read_video(mp4)[0], 16))
