"""Test-session settings: no network, small thread count, shared fixtures."""

import os

# Must be set before huggingface_hub is imported anywhere (it reads the flag at import).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def photo() -> Path:
    """A real photograph (JPEG) shipped with the tests."""
    return DATA / "photo.jpg"


@pytest.fixture(scope="session")
def tiny_flextok_weights(tmp_path_factory) -> Path:
    """A random-weight `flextok-tiny` checkpoint in the official key layout, as a Hub-style folder:
    model.safetensors (encoder, decoder and vae.vae.* keys) + vae/config.json."""
    import json

    from safetensors.torch import save_file

    from tok.tokenizers.flextok import FlexTok, preset

    torch.manual_seed(1)
    model = FlexTok(preset("tiny"))
    # Non-zero modulation so the decoder output depends on every part of the network.
    for name, p in model.named_parameters():
        if "adaLN_modulation" in name or "dec_to_patches" in name:
            torch.nn.init.normal_(p, std=0.02)
    folder = tmp_path_factory.mktemp("flextok_tiny")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "vae").mkdir()
    (folder / "vae" / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL", "scaling_factor": 0.5, "shift_factor": 0.1}))
    return folder


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory):
    """A torch-fidelity Inception-v3 state dict file with random weights, batch-norm statistics
    calibrated on noise images so the features have a sensible scale."""
    from unittest import mock

    import torch_fidelity.feature_extractor_inceptionv3 as fe

    torch.manual_seed(7)
    with mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: {}), mock.patch.object(
        fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None
    ):
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 1.0  # running statistics := the calibration batch's statistics
    net.train()
    with torch.no_grad():
        net((torch.rand(2, 3, 32, 32) * 255).to(torch.uint8))
    path = tmp_path_factory.mktemp("inception") / "weights-inception-2015-12-05-6726825d.pth"
    torch.save(net.state_dict(), path)
    return path


class TinyI3D(torch.nn.Module):
    """The interface of StyleGAN-V's i3d_torchscript.pt: uint8 (B, 3, T, H, W) -> (B, 400)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 400)

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False) -> torch.Tensor:
        x = x.float()
        if rescale:
            x = x / 127.5 - 1
        if resize:
            x = torch.nn.functional.interpolate(x, size=(x.shape[2], 16, 16), mode="trilinear", align_corners=False)
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3, 4)))


@pytest.fixture(scope="session")
def i3d_file(tmp_path_factory):
    """A scripted stand-in for the I3D weights file FVD loads (random weights)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("i3d") / "i3d_torchscript.pt"
    torch.jit.script(TinyI3D()).save(str(path))
    return path
