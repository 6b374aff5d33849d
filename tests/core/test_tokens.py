import json

import pytest
import torch
from safetensors.torch import save_file

from tok.core import TokError, TokenLayout, Tokens
from tok.core.tokens import read_header


def seq_layout(vocab=64000):
    return TokenLayout("sequence", (vocab,), (("n",),), extra={"image_size": 256})


def test_layout_kinds_and_validation():
    TokenLayout("grid", (8192,), (("t", "h", "w"),))
    TokenLayout("scales", (4096, 4096), (("h", "w"), ("h", "w")))
    TokenLayout("codebooks", (1024,), (("q", "t"),), rates={"tokens_per_second": 75.0})
    with pytest.raises(TokError, match="unknown token layout kind"):
        TokenLayout("ragged", (10,), (("n",),))
    with pytest.raises(TokError, match="cannot have axes"):
        TokenLayout("codebooks", (10,), (("t",),))
    with pytest.raises(TokError, match="2 vocab sizes but 1"):
        TokenLayout("sequence", (10, 10), (("n",),))


def test_layout_dict_round_trip():
    layout = TokenLayout("scales", (4096, 4096), (("h", "w"), ("h", "w")), rates={"fps": 8.0}, extra={"a": 1})
    assert TokenLayout.from_dict(json.loads(json.dumps(layout.to_dict()))) == layout
    with pytest.raises(TokError, match="unknown token layout fields: bogus"):
        TokenLayout.from_dict({**layout.to_dict(), "bogus": 1})


def test_tokens_checks_ids_and_shapes():
    with pytest.raises(TokError, match=r"ids in \[0, 70000\], outside the vocabulary \[0, 64000\)"):
        Tokens([torch.tensor([[0, 70000]])], seq_layout(), "m")
    with pytest.raises(TokError, match="must hold integer ids"):
        Tokens([torch.zeros(1, 4)], seq_layout(), "m")
    with pytest.raises(TokError, match=r"expected \(B, n\)"):
        Tokens([torch.zeros(1, 2, 2, dtype=torch.long)], seq_layout(), "m")
    with pytest.raises(TokError, match="same leading batch"):
        Tokens([torch.zeros(1, 4, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long)], TokenLayout("scales", (5, 5), (("n",), ("n",))), "m")


def test_save_load_round_trip(tmp_path):
    ids = torch.randint(0, 64000, (3, 17))
    tokens = Tokens([ids], seq_layout(), "flextok-small", "abc123", [{"path": f"{i}.png"} for i in range(3)])
    path = tokens.save(tmp_path / "x.tok")
    loaded = Tokens.load(path)
    assert torch.equal(loaded.streams[0], ids) and loaded.streams[0].dtype == torch.int64
    assert loaded.layout == tokens.layout and loaded.model == "flextok-small" and loaded.weights_digest == "abc123"
    assert loaded.sources[2] == {"path": "2.png"}
    assert [p.name for p in tmp_path.iterdir()] == ["x.tok"]  # no temporary file left
    # 64000 codes fit in uint16: 2 bytes per id on disk.
    assert path.stat().st_size < 3 * 17 * 2 + 1024
    assert read_header(path)["format_version"] == 1


def test_encoder_options_travel_with_the_tokens(tmp_path):
    ids = torch.randint(0, 64000, (2, 5))
    plain = Tokens([ids], seq_layout(), "m", "d")
    assert "encoder_options" not in read_header(plain.save(tmp_path / "plain.tok"))  # the default adds nothing
    assert Tokens.load(tmp_path / "plain.tok").encoder_options == {}
    fast = Tokens([ids], seq_layout(), "m", "d", encoder_options={"cpu_int8": True})
    loaded = Tokens.load(fast.save(tmp_path / "fast.tok"))
    assert loaded.encoder_options == {"cpu_int8": True}
    assert loaded[1].encoder_options == loaded.to("cpu").encoder_options == {"cpu_int8": True}
    assert Tokens.cat([loaded[0], loaded[1]]).encoder_options == {"cpu_int8": True}
    with pytest.raises(TokError, match=r"cannot concatenate tokens encoded with options default and with \{'cpu_int8': True\}"):
        Tokens.cat([loaded, plain])
    header = read_header(tmp_path / "fast.tok")
    save_file({"stream.0": ids.to(torch.int32)}, str(tmp_path / "bad.tok"), metadata={"tok": json.dumps({**header, "encoder_options": ["cpu_int8"]})})
    with pytest.raises(TokError, match=r"bad.tok: encoder_options must be a JSON object, got \['cpu_int8'\]"):
        Tokens.load(tmp_path / "bad.tok")


def test_multi_stream_round_trip_and_slicing(tmp_path):
    layout = TokenLayout("scales", (4096, 4096), (("h", "w"), ("h", "w")))
    tokens = Tokens([torch.randint(0, 4096, (2, 1, 1)), torch.randint(0, 4096, (2, 2, 2))], layout, "m")
    loaded = Tokens.load(tokens.save(tmp_path / "s.tok"))
    assert loaded.shapes == [(2, 1, 1), (2, 2, 2)]
    assert loaded[1].shapes == [(1, 1, 1), (1, 2, 2)] and torch.equal(loaded[1].streams[1], tokens.streams[1][1:])
    assert loaded.num_tokens == 5
    assert Tokens.cat([loaded[0], loaded[1]]).shapes == loaded.shapes


def test_load_rejects_bad_files(tmp_path):
    missing = tmp_path / "missing.tok"
    with pytest.raises(TokError, match="missing.tok: no such token file"):
        Tokens.load(missing)
    garbage = tmp_path / "garbage.tok"
    garbage.write_bytes(b"not a safetensors file at all")
    with pytest.raises(TokError, match="garbage.tok: not a valid .tok file"):
        Tokens.load(garbage)
    foreign = tmp_path / "foreign.tok"
    save_file({"x": torch.zeros(2)}, str(foreign))
    with pytest.raises(TokError, match="without a tok header"):
        Tokens.load(foreign)
    # A header that promises a smaller vocabulary than the stored ids.
    header = Tokens([torch.tensor([[1, 2]])], seq_layout(), "m").header()
    header["layout"]["vocab_sizes"] = [2]
    bad = tmp_path / "range.tok"
    save_file({"stream.0": torch.tensor([[1, 2]], dtype=torch.int32)}, str(bad), metadata={"tok": json.dumps(header)})
    with pytest.raises(TokError, match=r"range.tok: stream 0 has ids in \[1, 2\], outside"):
        Tokens.load(bad)
    header["format_version"] = 99
    future = tmp_path / "future.tok"
    save_file({"stream.0": torch.tensor([[1]], dtype=torch.int32)}, str(future), metadata={"tok": json.dumps(header)})
    with pytest.raises(TokError, match="format version 99 is not supported"):
        Tokens.load(future)


def test_failed_save_leaves_no_file(tmp_path, monkeypatch):
    import tok.core.tokens as tokens_module

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tokens_module, "save_file", boom)
    with pytest.raises(OSError):
        Tokens([torch.tensor([[1]])], seq_layout(), "m").save(tmp_path / "out.tok")
    assert list(tmp_path.iterdir()) == []
