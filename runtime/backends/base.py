"""The runner pattern every inference backend follows (as in Polygraphy's runners).

A runner owns one loaded model artifact. ``activate`` allocates (session, engine, buffers),
``infer`` checks the feed against the manifest's input specs and calls ``infer_impl``,
``deactivate`` frees. Feeds and results are dicts of numpy arrays keyed by contract names.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ...bundle import TensorSpec, sha256_bytes
from ..errors import BackendError, InputError

_DTYPES = {"int64": np.int64, "float32": np.float32, "float16": np.float16, "int32": np.int32, "uint8": np.uint8}


@dataclass(frozen=True, repr=False)
class ModelFile:
    """What a runner loads: an artifact's bytes (already checked by whoever read them, see ``opened_bundle``)
    and its file name for messages. Runners never reopen a path, so what runs is what was checked."""

    name: str
    data: bytes
    checked_sha256: str = ""  # the digest ``data`` was already checked against (a bundle's manifest), if any

    @classmethod
    def read(cls, path: str | Path) -> ModelFile:
        """A file on disk, read once (tools and tests that hold a plain file rather than a bundle)."""
        return cls(Path(path).name, Path(path).read_bytes())

    @cached_property
    def sha256(self) -> str:
        """A runner keys its compile cache on it for every shape it compiles. Bytes from a bundle were hashed when
        they were checked, so that digest is reused (hashing the base model's two parts again cost ~20 ms of every
        start's first prediction); other bytes are hashed once, here."""
        return self.checked_sha256 or sha256_bytes(self.data)

    def __repr__(self) -> str:
        return f"ModelFile({self.name!r}, {len(self.data)} bytes)"


def feed_dims(feed: dict[str, np.ndarray], specs: tuple[TensorSpec, ...]) -> dict[str, int]:
    """Validate ``feed`` against ``specs`` and return the size of each symbolic axis (e.g. batch, text_length);
    an axis named in several inputs must have one size in all of them."""
    names = [s.name for s in specs]
    if sorted(feed) != sorted(names):
        raise InputError(f"feed has inputs {sorted(feed)}, the graph expects {names}")
    dims: dict[str, int] = {}
    for spec in specs:
        array = feed[spec.name]
        if array.dtype != _DTYPES[spec.dtype]:
            raise InputError(f"input {spec.name!r}: dtype {array.dtype}, expected {spec.dtype}")
        if array.ndim != len(spec.shape):
            raise InputError(f"input {spec.name!r}: shape {array.shape}, expected {spec.shape}")
        for got, want in zip(array.shape, spec.shape):
            if isinstance(want, str):
                seen = dims.setdefault(want, int(got))
                if got != seen:
                    raise InputError(f"input {spec.name!r}: {want} {got} differs from the other inputs' {seen}")
            elif got != want:
                raise InputError(f"input {spec.name!r}: shape {array.shape}, expected {spec.shape}")
    if not all(dims.values()):
        raise InputError("empty batch: every input needs at least one row and one token")
    return dims


def resolve_shape(spec: TensorSpec, dims: dict[str, int]) -> tuple[int, ...]:
    """``spec``'s shape with each symbolic axis replaced by its size in ``dims``."""
    return tuple(dims[d] if isinstance(d, str) else int(d) for d in spec.shape)


class Runner(abc.ABC):
    """Base runner: subclasses implement activate_impl / infer_impl / deactivate_impl."""

    name = "runner"
    # False: ``pixel_values`` is fed as the graph takes it (float32 N x 3 x S x S, normalised). True: the runner
    # normalises inside its compiled model and takes the letterboxed uint8 N x S x S x 3 canvas (OpenVINO).
    takes_uint8_pixels = False

    def __init__(self, inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...]):
        self.inputs = inputs
        self.outputs = outputs
        self.active = False

    def activate(self) -> Runner:
        if not self.active:
            self.activate_impl()
            self.active = True
        return self

    def infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch; raises InputError on a bad feed before touching the backend."""
        if not self.active:
            raise BackendError(f"{self.name}: call activate() before infer()")
        feed_dims(feed, self.inputs)
        return self.infer_impl(feed)

    def deactivate(self) -> None:
        if self.active:
            self.deactivate_impl()
            self.active = False

    def __enter__(self) -> Runner:
        return self.activate()

    def __exit__(self, *exc) -> None:
        self.deactivate()

    @abc.abstractmethod
    def activate_impl(self) -> None: ...

    @abc.abstractmethod
    def infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    @abc.abstractmethod
    def deactivate_impl(self) -> None: ...
