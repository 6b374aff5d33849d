"""Read media files in background threads while the model works on the previous batch.

Decoding a photo, a clip or a mesh is single-threaded Python-side work (PIL, soundfile, PyAV
release the GIL while they decode), and without overlap every batch waits for its files: a
12-MP JPEG takes about as long to read as the bundled FlexTok takes to tokenize it on two cores,
and a GPU model waits for its files far longer than it computes.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

# Threads reading ahead; the model keeps the cores it was given, so a few readers suffice.
READ_WORKERS = min(4, os.cpu_count() or 1)


def read_ahead(read: Callable[[Path], T], chunks: Iterable[list[Path]], workers: int = READ_WORKERS) -> Iterator[list[T]]:
    """`[read(p) for p in chunk]` for each chunk, in order, while the next chunk is read by
    `workers` threads (0: read each chunk when it is reached, in the caller's thread).

    A failed read raises its exception when its chunk is reached, so everything before it is
    handled first, as in a plain loop; reads not yet started are then cancelled. `read` runs in
    other threads and in any order, so it must depend only on its path (tok's readers do: the
    shape sampler is seeded per file).
    """
    if workers < 1:
        yield from ([read(p) for p in chunk] for chunk in chunks)
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="tok-read")
    pending: deque[list[Future[T]]] = deque()
    try:
        for chunk in chunks:
            pending.append([pool.submit(read, p) for p in chunk])
            if len(pending) > 1:
                yield [f.result() for f in pending.popleft()]
        while pending:
            yield [f.result() for f in pending.popleft()]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
