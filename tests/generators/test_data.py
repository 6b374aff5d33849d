import json

import numpy as np
import pytest
import torch
from PIL import Image

import tok
from tok.core import Tokens, TokError
from tok.generators import data as token_data
from tok.generators.data import (
    TokenDataset,
    TokenDatasetWriter,
    TokenSequences,
    encode_dataset,
    storage_dtype,
)


@pytest.fixture
def photo_classes(tmp_path):
    """Seven small images in two class sub-folders."""
    root = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for cls, count in (("cats", 4), ("dogs", 3)):
        (root / cls).mkdir(parents=True)
        for i in range(count):
            Image.fromarray((rng.random((40, 48, 3)) * 255).astype(np.uint8)).save(root / cls / f"{i}.png")
    return root


@pytest.fixture
def tiny(tiny_flextok_weights):
    return tok.load("flextok-tiny", weights=tiny_flextok_weights, device="cpu")


def stored_paths(root):
    return sorted(TokenDataset(root).paths)


def test_storage_dtypes():
    assert storage_dtype(256) == np.uint8 and storage_dtype(257) == np.uint16
    assert storage_dtype(64000) == np.uint16 and storage_dtype(70000) == np.uint32


def test_encode_dataset_round_trip(tmp_path, photo_classes, tiny):
    manifest = encode_dataset(photo_classes, tiny, tmp_path / "ds", num_tokens=8, batch_size=3, shard_size=3)
    assert manifest.num_items == 7 and len(manifest.shards) == 3 and manifest.classes == ["cats", "dogs"]
    ds = TokenDataset(tmp_path / "ds")
    assert len(ds) == 7 and ds.labels == [0, 0, 0, 0, 1, 1, 1]
    assert np.load(tmp_path / "ds" / "shard-00000.stream0.npy", mmap_mode="r").dtype == np.uint16
    # The stored ids equal a direct encode of the same image.
    index = ds.paths.index("dogs/1.png")
    streams, label = ds[index]
    image, _ = tok.core.media.read_image(photo_classes / "dogs" / "1.png")
    direct = tiny.encode(tiny.preprocess(image), num_tokens=8)
    assert label == 1 and torch.equal(streams[0], direct.streams[0][0])
    header = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert header["model"] == "flextok-tiny" and header["weights_digest"] == tiny.weights_digest
    assert header["layout"]["kind"] == "sequence" and header["shapes"] == [[8]]
    seqs = TokenSequences(ds)
    seq, label = seqs[index]
    assert seq.shape == (8, 1) and torch.equal(seq[:, 0], direct.streams[0][0]) and label == 1


class Interrupt(Exception):
    pass


@pytest.mark.slow
def test_interrupted_encoding_resumes_with_every_item_once(tmp_path, photo_classes, tiny, monkeypatch):
    out = tmp_path / "ds"
    # 1. Killed in the middle of a shard, after some .tok files of it were written.
    real_encode_files = tok.api.encode_files
    calls = {"n": 0}

    def dying_encode_files(*args, **kwargs):
        for item in real_encode_files(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 4:  # the first item of the second shard
                raise Interrupt
            yield item

    monkeypatch.setattr(tok.api, "encode_files", dying_encode_files)
    with pytest.raises(Interrupt):
        encode_dataset(photo_classes, tiny, out, num_tokens=4, shard_size=3, batch_size=1)
    assert len(TokenDataset(out)) == 3  # only the complete shard counts
    monkeypatch.setattr(tok.api, "encode_files", real_encode_files)

    # 2. Killed after a shard's arrays were written but before the manifest listed it.
    real_write = token_data.Manifest.write
    writes = {"n": 0}

    def dying_write(self, root):
        writes["n"] += 1
        if writes["n"] == 1:
            raise Interrupt
        real_write(self, root)

    monkeypatch.setattr(token_data.Manifest, "write", dying_write)
    with pytest.raises(Interrupt):
        encode_dataset(photo_classes, tiny, out, num_tokens=4, shard_size=3, batch_size=1)
    assert (out / "shard-00001.stream0.npy").exists() and len(TokenDataset(out)) == 3
    monkeypatch.setattr(token_data.Manifest, "write", real_write)

    # 3. The restart finishes: every item exactly once, every shard readable, no leftovers.
    manifest = encode_dataset(photo_classes, tiny, out, num_tokens=4, shard_size=3, batch_size=1)
    ds = TokenDataset(out)
    assert manifest.num_items == 7 and len(ds) == 7
    assert stored_paths(out) == sorted(f"{c}/{i}.png" for c, n in (("cats", 4), ("dogs", 3)) for i in range(n))
    assert not (out / ".pending").exists() and not list(out.glob(".*.part*"))
    # Two worker threads, one item per shard: the same ids for every path.
    encode_dataset(photo_classes, tiny, tmp_path / "fresh", num_tokens=4, shard_size=1, workers=2)
    reference = TokenDataset(tmp_path / "fresh")
    assert len(reference) == 7 and len(reference.manifest.shards) == 7
    for i, path in enumerate(ds.paths):
        assert torch.equal(ds[i][0][0], reference[reference.paths.index(path)][0][0])
    # A second run has nothing left to do.
    assert encode_dataset(photo_classes, tiny, out, num_tokens=4, shard_size=3).num_items == 7


def test_mixing_tokenizers_or_options_is_refused(tmp_path, photo_classes, tiny):
    out = tmp_path / "ds"
    encode_dataset(photo_classes / "cats", tiny, out, num_tokens=4)
    with pytest.raises(TokError, match="one tokenizer and one set of encoder options per dataset"):
        encode_dataset(photo_classes / "cats", tiny, out, num_tokens=8)
    writer = TokenDatasetWriter(out)
    other = Tokens([torch.zeros(1, 4, dtype=torch.long)], tiny.layout, "flextok-small", "abc")
    with pytest.raises(TokError, match="one tokenizer and one set of encoder options per dataset"):
        writer.start(other, [], {"num_tokens": 4})
    with pytest.raises(TokError, match="cannot mix tokens of model 'flextok-small'"):
        writer.write_shard(other, [-1], ["x.png"])


def test_a_resume_with_another_encoder_option_is_refused(tmp_path, photo_classes, tiny):
    # The Winograd encoder can move ids, so a dataset records it and refuses to mix paths.
    out = tmp_path / "ds"
    encode_dataset(photo_classes / "cats", tiny, out, num_tokens=4, shard_size=2)
    assert TokenDataset(out).manifest.options == {"num_tokens": 4}
    tiny.cpu_winograd_encoder = True
    with pytest.raises(TokError, match=r"options \{'num_tokens': 4\}; cannot add .*'cpu_winograd_encoder': True"):
        encode_dataset(photo_classes / "cats", tiny, out, num_tokens=4)
    winograd = tmp_path / "winograd"
    encode_dataset(photo_classes / "cats", tiny, winograd, num_tokens=4, shard_size=2)
    assert TokenDataset(winograd).manifest.options == {"num_tokens": 4, "cpu_winograd_encoder": True}
    encode_dataset(photo_classes / "cats", tiny, winograd, num_tokens=4)  # same options: resumes
    tiny.cpu_winograd_encoder = False
    with pytest.raises(TokError, match="one set of encoder options per dataset"):
        encode_dataset(photo_classes / "cats", tiny, winograd, num_tokens=4)


def test_bad_folders_and_labels(tmp_path, photo_classes, tiny):
    Image.new("RGB", (8, 8)).save(photo_classes / "top.png")
    with pytest.raises(TokError, match="both at the top and in sub-folders"):
        encode_dataset(photo_classes, tiny, tmp_path / "ds")
    (photo_classes / "top.png").unlink()
    encode_dataset(photo_classes, tiny, tmp_path / "ds", num_tokens=2)
    index = tmp_path / "ds" / "shard-00000.index.json"
    items = json.loads(index.read_text())
    items["items"][0]["label"] = 5
    index.write_text(json.dumps(items))
    with pytest.raises(TokError, match="class labels outside 0..1"):
        TokenDataset(tmp_path / "ds")
    with pytest.raises(TokError, match="not a token dataset"):
        TokenDataset(tmp_path)
