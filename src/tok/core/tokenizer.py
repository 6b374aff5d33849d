"""The Tokenizer contract: encoder -> quantizer -> decoder behind encode / decode.

Metrics, evaluation runs, the AR generator and the CLI talk only to this class:

    x = tok.preprocess(media)          # media -> model tensor (B, ...)
    tokens = tok.encode(x)             # Tokens (ids + layout), eval mode, no grad
    y = tok.decode(tokens)             # model tensor, same space as x
    media = tok.postprocess(y)         # back to media

`forward(x)` is the training path and returns a `TokenizerOutput`.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch
from torch import Tensor, nn

from .errors import TokError
from .media import DEFAULT_SUFFIXES, read_image, write_image
from .tokens import TokenLayout, Tokens

MODALITIES = ("image", "video", "audio", "shape")


@dataclass
class TokenizerOutput:
    """recon: reconstruction or training prediction; tokens: ids (None when not quantized); losses: name -> scalar."""

    recon: Tensor
    tokens: Tokens | None = None
    losses: dict[str, Tensor] = field(default_factory=dict)


class Tokenizer(nn.Module):
    """Base class of every tokenizer and codec.

    Subclasses set `modality`, build `encoder`, `quantizer`, `decoder`, and implement
    `layout`, `preprocess`, `postprocess`, `encode`, `decode` and `forward`.
    `name` and `weights_digest` are filled in by the zoo when a model is loaded, and written
    into every `.tok` file so decoding can check that the tokens belong to this model.
    """

    modality: ClassVar[str]

    def __init__(self, config: Any):
        super().__init__()
        self.config = config
        self.name = type(self).__name__.lower()
        self.weights_digest = ""

    # Opt-in bf16 autocast for CPU inference in the families that wrap their networks in
    # `cpu_bf16_autocast` (those that set `has_cpu_bf16`): faster on CPUs with native bf16
    # (AVX-512 BF16, AMX), slower elsewhere, and it can change some ids (README lists the measured
    # quality change). Code searches, rounding and inverse STFTs stay fp32. Off by default, so CPU
    # output matches the official fp32 code. Off means "add no autocast": an autocast the caller
    # opened (Accelerate's bf16 training) still applies.
    has_cpu_bf16: ClassVar[bool] = False
    _cpu_bf16: bool = False

    @property
    def cpu_bf16(self) -> bool:
        return self._cpu_bf16

    @cpu_bf16.setter
    def cpu_bf16(self, on: bool) -> None:
        if on and not self.has_cpu_bf16:
            raise TokError(f"{self.name} has no bf16 CPU inference path")
        self._cpu_bf16 = bool(on)

    def cpu_bf16_autocast(self, x: Tensor):
        if x.device.type == "cpu" and self._cpu_bf16:
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return nullcontext()

    # The network parts `compile_networks` hands to torch.compile and `cpu_int8` switches: paths
    # of submodules that the model calls as modules (a compiled module only speeds up
    # `module(...)`, not its other methods). Empty: the family has neither path.
    compile_parts: ClassVar[tuple[str, ...]] = ()

    # Opt-in int8 matrix products for CPU inference (`tok.nn.int8`): the plain Linear and Conv1d
    # layers of the network parts run fbgemm's dynamic int8 kernels in fp32 CPU inference. For
    # CPUs without native bf16, where fp32 products bound the transformer and Vocos decoders;
    # it changes outputs more than bf16 (README lists the measured quality change). Code searches
    # stay fp32. Off by default. `int8_parts` narrows it where a part's ids are too sensitive
    # (None: all of `compile_parts`).
    int8_parts: ClassVar[tuple[str, ...] | None] = None
    _cpu_int8: bool = False

    @property
    def cpu_int8(self) -> bool:
        return self._cpu_int8

    @cpu_int8.setter
    def cpu_int8(self, on: bool) -> None:
        from ..nn.int8 import use_int8

        parts = self.compile_parts if self.int8_parts is None else self.int8_parts
        self._cpu_int8 = self._switch_parts(parts, use_int8, on, "int8 CPU inference path")

    # Opt-in Winograd 3x3 convolutions (`tok.nn.winograd`) in the convolutional encoders' fp32 CPU
    # inference; the decoders use them always. Off by default: an encoder's features are rounded
    # or matched to a codebook, and Winograd's float rounding (about 1e-5 relative) can move a
    # value that sits on a boundary to the neighbouring id, so only the direct convolution
    # guarantees the official code's ids. README lists the measured id agreement and speed.
    winograd_encoder_parts: ClassVar[tuple[str, ...]] = ()
    _cpu_winograd_encoder: bool = False

    @property
    def cpu_winograd_encoder(self) -> bool:
        return self._cpu_winograd_encoder

    @cpu_winograd_encoder.setter
    def cpu_winograd_encoder(self, on: bool) -> None:
        from ..nn.winograd import use_winograd

        self._cpu_winograd_encoder = self._switch_parts(
            self.winograd_encoder_parts, use_winograd, on, "encoder with 3x3 convolutions for Winograd")

    # Network parts that only decoding runs: an int8 switch confined to them leaves ids alone, so
    # `encoder_options` does not record it (FlexTok's int8 is decoder-only; WavTokenizer's SEANet
    # encoder has no int8 layers). Empty: assume any int8 layer may run in encode.
    decode_only_parts: ClassVar[tuple[str, ...]] = ()

    @property
    def encoder_options(self) -> dict[str, bool]:
        """The opt-in CPU inference paths that are on and can change this model's ids, as recorded
        in the tokens it makes (`.tok` headers, token datasets): empty on the default, exact path
        and on other devices, where the CPU switches do nothing."""
        if self.device.type != "cpu":
            return {}
        options = {}
        if self._cpu_bf16:
            options["cpu_bf16"] = True
        if self._cpu_int8 and self._int8_layers_outside(self.decode_only_parts):
            options["cpu_int8"] = True
        if self._cpu_winograd_encoder:
            options["cpu_winograd_encoder"] = True
        return options

    def _int8_layers_outside(self, parts: tuple[str, ...]) -> bool:
        from ..nn.int8 import is_int8

        skipped = {id(m) for path in parts for m in self.get_submodule(path).modules()}
        return any(is_int8(m) for m in self.modules() if id(m) not in skipped)

    def _switch_parts(self, parts: tuple[str, ...], switch: Callable[[nn.Module, bool], Any], on: bool, missing: str) -> bool:
        """Apply `switch(part, on)` to the network parts named in `parts` (refusing to switch on
        when there are none); returns the new state."""
        if on and not parts:
            raise TokError(f"{self.name} has no {missing}")
        for path in parts:
            switch(self.get_submodule(path), bool(on))
        return bool(on)

    def compile_networks(self, mode: str | None = None) -> Tokenizer:
        """Compile the network parts in place with torch.compile (inductor) for inference.

        Opt-in, for long runs: the first call of each part (and of each new input shape) pays
        the compilation, 20-90 s for a release-size model on a 2-core CPU; inductor caches the
        result on disk for later processes. Parameters are frozen into the compiled code while
        gradients are off (inductor `freezing`: on CPU, convolution weights are pre-packed for
        oneDNN and bias / activation / residual adds fused into the convolutions); weights
        changed later are still honoured (the compiled code is rebuilt), and training with
        gradients on compiles without freezing. Outputs match the eager model to float rounding.
        On a compute-bound CPU the gain is small (README: 1.0-1.13x); the target is the GPU,
        where `mode` "reduce-overhead" adds CUDA graphs for small batches ("max-autotune" also
        works). State-dict keys are unchanged.
        """
        if not self.compile_parts:
            raise TokError(f"{self.name} has no compile path")
        from torch._inductor import list_mode_options

        modes = list_mode_options()
        mode = mode or "default"
        if mode not in modes:
            raise TokError(f"compile mode {mode!r}: expected one of {', '.join(sorted(modes))}")
        options = {**modes[mode], "freezing": True}
        for path in self.compile_parts:
            self.get_submodule(path).compile(options=options)
        return self

    @property
    def compiled(self) -> bool:
        """Whether `compile_networks` has run on this model."""
        return bool(self.compile_parts) and all(
            getattr(self.get_submodule(p), "_compiled_call_impl", None) is not None for p in self.compile_parts)

    @property
    def layout(self) -> TokenLayout:
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def preprocess(self, media: Any) -> Tensor:
        raise NotImplementedError

    def postprocess(self, x: Tensor) -> Any:
        raise NotImplementedError

    def encode(self, x: Tensor, **opts: Any) -> Tokens:
        raise NotImplementedError

    def decode(self, tokens: Tokens, **opts: Any) -> Tensor:
        raise NotImplementedError

    # File-level I/O used by the API, the CLI and evaluation runs. The defaults are the image
    # ones; families of other modalities override the three methods (audio pads items of
    # different lengths in `encode_items` and records their lengths in the sources).

    def read_media(self, path: Path) -> tuple[Tensor, dict[str, Any]]:
        """One media file -> (one preprocessed item without a batch axis, its source description).

        The description is stored in the `.tok` header and handed back to `write_media`.
        """
        if self.modality != "image":
            raise NotImplementedError(f"{type(self).__name__} must implement read_media for {self.modality}")
        image, info = read_image(path)
        return self.preprocess(image)[0], info.to_dict()

    def encode_items(self, items: list[Tensor], sources: list[dict[str, Any]], **opts: Any) -> Tokens:
        """Encode preprocessed items from `read_media` as one batch."""
        return self.encode(torch.stack(items).to(self.device), sources=sources, **opts)

    def write_media(self, item: Tensor, path: Path, source: dict[str, Any] | None = None) -> Path:
        """Write one postprocessed item (no batch axis) to `path`, atomically."""
        if self.modality != "image":
            raise NotImplementedError(f"{type(self).__name__} must implement write_media for {self.modality}")
        return write_image(item, path)

    @property
    def media_suffix(self) -> str:
        """The file suffix `tok decode` writes by default."""
        return DEFAULT_SUFFIXES[self.modality]

    def output_suffix(self, source: dict[str, Any] | None) -> str:
        """The suffix `tok decode` writes for tokens of this source (families that take several
        kinds of media, such as a video model fed images, choose per source)."""
        return self.media_suffix

    def check_num_tokens(self, num_tokens: int | None) -> int | None:
        """Validate a requested token count; families with a flexible length override this."""
        if num_tokens is not None:
            raise TokError(f"model {self.name!r} has a fixed token count; do not pass a number of tokens")
        return None

    def make_tokens(self, streams: list[Tensor], sources: list[dict[str, Any]] | None = None, layout: TokenLayout | None = None) -> Tokens:
        """Wrap ids from this model in `Tokens` carrying its name, digest, layout (default: the
        full one) and the encoder options that made them."""
        return Tokens(streams, layout or self.layout, self.name, self.weights_digest, sources or [], self.encoder_options)

    def accepts_layout(self, layout: TokenLayout) -> bool:
        """Whether tokens of `layout` decode with this model (multi-scale families also accept a
        prefix of whole scales)."""
        return layout.compatible_with(self.layout)

    def layout_mismatch(self, layout: TokenLayout) -> str:
        """Why `layout` is refused (the text after the file name in the error)."""
        return f"layout {layout.kind} {layout.vocab_sizes} does not match model {self.name!r}"

    def check_tokens(self, tokens: Tokens, origin: str = "tokens") -> None:
        """Refuse tokens made by another model or with an incompatible layout."""
        if tokens.model != self.name:
            raise TokError(f"{origin} were made by model {tokens.model!r}, not {self.name!r}: decode them with --model {tokens.model}")
        if not self.accepts_layout(tokens.layout):
            raise TokError(f"{origin}: {self.layout_mismatch(tokens.layout)}")
        if tokens.weights_digest and self.weights_digest and tokens.weights_digest != self.weights_digest:
            # Same architecture, other weights: ids would decode to garbage without an error.
            raise TokError(
                f"{origin} were made with weights {tokens.weights_digest}, but {self.name!r} has weights {self.weights_digest}"
            )
        tokens.validate_ids(origin)
