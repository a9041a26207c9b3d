"""The live op registry: ``OPS`` (a read-only mapping ``name -> OpSpec``) and ``register_op``.

Shared ops are registered by :mod:`nasengine.ops.table` when :mod:`nasengine.ops` is imported; a
method registers the ops it brings when its package is imported (e.g. ``methods/scnas/ops.py``
calls :func:`register_op` at import). Genotype validation and the genotype JSON Schema read the
registry at call time, so a newly registered op is known everywhere at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import torch.nn as nn

__all__ = ["OpSpec", "OPS", "OP_KINDS", "register_op", "unregister_op", "get_op", "op_names"]

#: ``cell``: same resolution, one input; ``resample``: 2x down/up; ``stem``/``head``: the fixed
#: ends of a network; ``node``: a multi-input op (``arity != 1``), only allowed on nodes.
OP_KINDS: tuple[str, ...] = ("cell", "resample", "stem", "head", "node")


def _no_level_change(**_) -> int:
    return 0


@dataclass(frozen=True)
class OpSpec:
    """One entry of the op vocabulary.

    Attributes:
        name: the op name used in genotypes.
        kind: one of :data:`OP_KINDS`.
        build: ``build(c_in, c_out, **params) -> nn.Module``. For a multi-input op (``arity != 1``)
            ``c_in`` is the tuple of the inputs' channels (in ``slot`` order) and the module's
            ``forward`` takes the list of input tensors.
        memory: ``memory(c_in, c_out, spatial_shape, **params) -> int`` bytes saved for backward
            per sample at the op's input ``spatial_shape`` (so a transformer's cost may depend on
            resolution; ``c_in`` as in ``build``).
        flops: ``flops(c_in, c_out, spatial_shape, **params) -> int`` per sample.
        level_delta: ``level_delta(**params) -> int``: change of resolution level
            (+1 = half resolution, -1 = double).
        same_channels: the op needs ``c_in == c_out`` (``skip``).
        arity: number of tensor inputs: 1 (default), n > 1, or 0 for "any number" (a list).
        saves_input: the module keeps its input tensor itself for backward (a LeakyReLU or a
            pool first, unlike the ReLU-first shared ops, whose ReLU saves a new tensor). ``memory``
            then leaves that input out: several ops reading one tensor save one storage, so the
            genotype figures count each such tensor once.
        identity: the module returns its input tensor itself (``skip``): the output is the same
            storage as the input (the figures follow the alias).
        description: one line for people.
    """

    name: str
    kind: str
    build: Callable[..., nn.Module]
    memory: Callable[..., int]
    flops: Callable[..., int]
    level_delta: Callable[..., int] = field(default=_no_level_change)
    same_channels: bool = False
    description: str = ""
    arity: int = 1
    saves_input: bool = False
    identity: bool = False

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"an op name is a non-empty string, got {self.name!r}")
        if self.kind not in OP_KINDS:
            raise ValueError(f"op {self.name!r}: kind must be one of {', '.join(OP_KINDS)}, got {self.kind!r}")
        if not isinstance(self.arity, int) or isinstance(self.arity, bool) or self.arity < 0:
            raise ValueError(f"op {self.name!r}: arity must be an integer >= 0, got {self.arity!r}")
        if (self.kind == "node") != (self.arity != 1):
            raise ValueError(f"op {self.name!r}: multi-input ops (arity != 1) have kind 'node' and only they do")

    @property
    def multi_input(self) -> bool:
        """True for ops that take a list of inputs (they sit on nodes with ``combine: inputs``)."""
        return self.arity != 1

    def out_shape(self, spatial_shape: Sequence[int], **params) -> tuple[int, ...]:
        """Output spatial shape for an input of ``spatial_shape``."""
        d = self.level_delta(**params)
        if d >= 0:
            return tuple(int(s) // 2**d for s in spatial_shape)
        return tuple(int(s) * 2 ** (-d) for s in spatial_shape)


class _OpRegistry(Mapping):
    """Read-only live mapping ``name -> OpSpec`` in registration order; only :func:`register_op` adds."""

    def __init__(self):
        self._specs: dict[str, OpSpec] = {}

    def __getitem__(self, name: str) -> OpSpec:
        try:
            return self._specs[name]
        except (KeyError, TypeError):
            raise KeyError(f"unknown op {name!r}; known ops: {', '.join(sorted(self._specs))}") from None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._specs

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(self._specs))

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"OPS({', '.join(self._specs)})"


#: The live op registry shared by every method.
OPS: Mapping[str, OpSpec] = _OpRegistry()


def register_op(spec: OpSpec, *, replace: bool = False) -> OpSpec:
    """Add ``spec`` to :data:`OPS` and return it.

    Registering the same spec again is a no-op (a package imported twice); another spec under a
    taken name raises ``ValueError`` unless ``replace=True`` (two methods must not silently fight
    over a name: genotypes would build differently depending on import order).
    """
    if not isinstance(spec, OpSpec):
        raise TypeError(f"register_op takes an OpSpec, got {type(spec).__name__}")
    specs = OPS._specs  # type: ignore[attr-defined]
    old = specs.get(spec.name)
    if old is not None and old != spec and not replace:
        raise ValueError(f"op {spec.name!r} is already registered with a different spec; pass replace=True to override")
    specs[spec.name] = spec
    return spec


def unregister_op(name: str) -> OpSpec | None:
    """Remove ``name`` from :data:`OPS` and return its spec (None if absent). For tests and tools
    that register a temporary op; a method's ops stay registered for the life of the process."""
    return OPS._specs.pop(name, None)  # type: ignore[attr-defined]


def get_op(name: str) -> OpSpec:
    """The :class:`OpSpec` for ``name``; ``KeyError`` naming the known ops otherwise."""
    return OPS[name]


def op_names() -> tuple[str, ...]:
    """Names of the registered ops, in registration order."""
    return tuple(OPS)

