"""Reading files ahead: same results in the same order as a plain loop, the next batch read while
the caller works on the current one, and a failed read raised at its batch."""

import threading
from pathlib import Path

import pytest

from tok.core import TokError
from tok.core.media.read_ahead import read_ahead

CHUNKS = [[Path(f"{b}-{i}") for i in range(n)] for b, n in enumerate((3, 1, 4, 2))]


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_results_come_in_order(workers):
    got = list(read_ahead(lambda p: p.name.upper(), CHUNKS, workers))
    assert got == [[p.name.upper() for p in chunk] for chunk in CHUNKS]
    assert list(read_ahead(str, [], workers)) == []


def test_the_next_chunk_is_read_while_the_caller_works():
    next_read = threading.Event()

    def read(path):
        if path.name == "1-0":
            next_read.set()
        return path.name

    chunks = read_ahead(read, CHUNKS, workers=1)
    assert next(chunks) == ["0-0", "0-1", "0-2"]
    # The caller has not asked for chunk 1, yet a reader thread gets to it.
    assert next_read.wait(timeout=10)
    assert next(chunks) == ["1-0"]
    chunks.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("tok-read")]


def test_without_workers_nothing_is_read_ahead():
    names = []
    chunks = read_ahead(lambda p: names.append(p.name), CHUNKS, workers=0)
    next(chunks)
    assert names == ["0-0", "0-1", "0-2"]


@pytest.mark.parametrize("workers", [0, 2])
def test_a_failed_read_raises_at_its_chunk(workers):
    def read(path):
        if path.name == "2-1":
            raise TokError(f"{path}: corrupt or truncated image")
        return path.name

    chunks = read_ahead(read, CHUNKS, workers)
    assert next(chunks) == ["0-0", "0-1", "0-2"] and next(chunks) == ["1-0"]
    with pytest.raises(TokError, match="2-1: corrupt or truncated image"):
        next(chunks)
    assert not [t for t in threading.enumerate() if t.name.startswith("tok-read")]


def test_encode_files_writes_the_batches_before_a_bad_file(tmp_path, photo, tiny_flextok_weights):
    import shutil

    import tok

    model = tok.load("flextok-tiny", weights=tiny_flextok_weights, device="cpu")
    paths = [tmp_path / f"{i}.jpg" for i in range(5)]
    for p in paths:
        shutil.copy(photo, p)
    paths[3].write_bytes(photo.read_bytes()[:200])
    outputs = [tmp_path / f"{i}.tok" for i in range(5)]
    written = []
    with pytest.raises(TokError, match="3.jpg: corrupt or truncated image"):
        for _, out in tok.api.encode_files(model, paths, outputs, num_tokens=2, batch_size=2):
            written.append(out.name)
    assert written == ["0.tok", "1.tok"] and sorted(p.name for p in tmp_path.glob("*.tok")) == written
