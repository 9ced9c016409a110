"""Readers for foreign checkpoint files that never run the code those files carry, keyed by format.

Each reader turns a file into plain data (tensors, numbers, containers); the variant whose format it is maps that
data to its hparams and state dict (its ``upstream_weights``), so this module knows no variant and ``hub`` knows no
format: :func:`read` dispatches on the format a variant (``GAN.upstream_format``) or a registry entry names.

- ``"torch"``: a ``torch.save`` file (zip or legacy serialisation) such as junyanz' ``latest_net_G.pth``, read
  with ``torch.load(weights_only=True)``; a folder of them reads as ``{file stem: contents}``.
- ``"pytorch-gan-zoo"``: facebookresearch/pytorch_GAN_zoo's checkpoints, ``torch.save`` files whose one foreign
  class (the config) is read into a stand-in.
- ``"nvidia-pickle"``: see below.

NVIDIA's StyleGAN2-ADA and StyleGAN3 network pickles (``ffhq.pkl``, ``network-snapshot-*.pkl``) store every network
as ``torch_utils.persistence._reconstruct_persistent_obj(meta)``, where ``meta["module_src"]`` is the Python source
of the module that defined it; NVIDIA's loader executes that source. :func:`read_nvidia_pickle` instead unpickles
with an allow-list: it builds tensors, numpy scalars and plain containers, turns each persistent network into a
:class:`PersistentObject` holding its class name, init arguments and ``__dict__`` (the source is hashed, never
run), and refuses every other global with :class:`UnsafePickleError`.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle that asks for something outside the allow-list (code, an unknown class)."""


@dataclass
class PersistentObject:
    """A network from an NVIDIA pickle, as data: never instantiated from its embedded source.

    Attributes:
        class_name: e.g. ``"training.networks.Generator"``.
        state: the module's ``__dict__`` (``_parameters``, ``_buffers``, ``_modules``, ``_init_kwargs``, ...).
        source_sha256: sha256 of the embedded module source (kept to identify it, never executed).
    """

    class_name: str
    state: dict[str, Any]
    source_sha256: str

    @property
    def init_args(self) -> tuple:
        return tuple(self.state.get("_init_args", ()))

    @property
    def init_kwargs(self) -> dict[str, Any]:
        return _plain(self.state.get("_init_kwargs", {}))

    def state_dict(self) -> dict[str, Tensor]:
        """Parameters and persistent buffers, recursively, in ``nn.Module.state_dict()`` order."""
        out: dict[str, Tensor] = {}
        self._collect("", out)
        return out

    def _collect(self, prefix: str, out: dict[str, Tensor]) -> None:
        skip = set(self.state.get("_non_persistent_buffers_set", ()))
        for name, p in self.state.get("_parameters", {}).items():
            if p is not None:
                out[prefix + name] = p
        for name, b in self.state.get("_buffers", {}).items():
            if b is not None and name not in skip:
                out[prefix + name] = b
        for name, child in self.state.get("_modules", {}).items():
            if isinstance(child, PersistentObject):
                child._collect(f"{prefix}{name}.", out)
            elif child is not None:
                raise UnsafePickleError(f"{prefix}{name} is a {type(child).__name__}, not a persistent network")


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``: a plain dict (attribute access is not needed here)."""


def _plain(value: Any) -> Any:
    # EasyDict/OrderedDict -> dict, numpy scalars -> Python numbers, recursively.
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _reconstruct_persistent_obj(meta: dict[str, Any]) -> PersistentObject:
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("state"), dict):
        raise UnsafePickleError("a persistent object whose metadata is not a class record")
    source = meta.get("module_src") or ""
    return PersistentObject(
        class_name=str(meta.get("class_name")),
        state=dict(meta["state"]),
        source_sha256=hashlib.sha256(source.encode()).hexdigest(),
    )


def _rebuild_parameter(data: Tensor, requires_grad: bool, backward_hooks: Any, *state: Any) -> Tensor:
    return data.detach()


def _load_storage(data: bytes) -> Any:
    # Each storage is a legacy torch.save of the storage alone, which the weights-only loader reads.
    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")


def _numpy_scalar(*args: Any) -> Any:
    from numpy._core.multiarray import scalar

    return scalar(*args)


def _numpy_reconstruct(*args: Any) -> Any:
    from numpy._core.multiarray import _reconstruct

    return _reconstruct(*args)


_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("__builtin__", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load {module}.{name}: this reader builds only tensors, numbers and the network "
                f"records of NVIDIA's pickles, and never imports or runs what a file names"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"refusing persistent id {pid!r}: not an NVIDIA network pickle")


def read_nvidia_pickle(path: str | os.PathLike) -> Any:
    """Unpickle an NVIDIA network pickle as data (see the module docstring). Returns its top-level object,
    usually ``{"G": ..., "D": ..., "G_ema": ..., "training_set_kwargs": ..., "augment_pipe": ...}``.

    Raises:
        UnsafePickleError: the file asks for a global outside the allow-list.
        pickle.UnpicklingError / EOFError: a truncated or damaged file.
    """
    with open(path, "rb") as f:
        return _RestrictedUnpickler(f).load()


def read_torch(path: str | os.PathLike) -> Any:
    """A ``torch.save`` file read with ``torch.load(weights_only=True)``: tensors and plain containers only, whatever
    else the file names is refused (:class:`UnsafePickleError`), never imported or run. A folder reads as
    ``{file stem: contents}`` of its ``.pth``/``.pt`` files (a training folder of several networks)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if n.endswith((".pth", ".pt")))
        if not names:
            raise ValueError(f"{path} holds no .pth or .pt files")
        return {os.path.splitext(n)[0]: read_torch(os.path.join(path, n)) for n in names}
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Weights only load failed" in str(e):
            found = next((line.strip() for line in str(e).splitlines() if "Unsupported global" in line), "")
            raise UnsafePickleError(
                f"refusing to load {path}: it names code, not only tensors ({found or 'see the file'}); this reader "
                "never imports or runs what a file names"
            ) from None
        raise


class ZooConfig:
    """Stands in for pytorch_GAN_zoo's ``models.utils.config.BaseConfig`` (an attribute bag) while
    ``torch.load(weights_only=True)`` reads a zoo checkpoint: the only class such a file names besides tensors.
    The unpickler sets its ``__dict__`` from the file; nothing of the zoo is imported."""


def read_gan_zoo(path: str | os.PathLike) -> dict[str, Any]:
    """A facebookresearch/pytorch_GAN_zoo checkpoint (``torch.save(model.getStateDict())``: ``{"config": BaseConfig,
    "netG", "netD", "avgG"}``, zip or legacy serialisation) as plain data, the config a dict. Read with
    ``torch.load(weights_only=True)`` and :class:`ZooConfig` allow-listed under the zoo's class name, so every other
    global (code, a ``__reduce__`` payload) is refused and never runs."""
    with torch.serialization.safe_globals([(ZooConfig, "models.utils.config.BaseConfig")]):
        data = read_torch(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds a {type(data).__name__}, not a pytorch_GAN_zoo checkpoint dict")
    config = data.get("config")
    if isinstance(config, ZooConfig):
        data = {**data, "config": _plain(vars(config))}
    return data


READERS = {"torch": read_torch, "nvidia-pickle": read_nvidia_pickle, "pytorch-gan-zoo": read_gan_zoo}
FORMATS = {
    "torch": "torch.save file of tensors",
    "nvidia-pickle": "NVIDIA network pickle",
    "pytorch-gan-zoo": "pytorch_GAN_zoo checkpoint",
}


class UpstreamFormatError(ValueError):
    """A file that its format's reader cannot read: truncated, or a file of another kind."""


def read(path: str | os.PathLike, fmt: str) -> Any:
    """The plain data of upstream file ``path`` in format ``fmt`` (a key of :data:`READERS`).

    Raises:
        UnsafePickleError: the file asks for code; nothing it names was imported or run.
        UpstreamFormatError: a truncated or foreign file.
        FileNotFoundError: no such file or folder.
    """
    if fmt not in READERS:
        raise ValueError(f"unknown upstream format {fmt!r}; ganzoo reads {', '.join(READERS)}")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no upstream file {path}")
    try:
        return READERS[fmt](path)
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, RuntimeError, OSError, KeyError, IndexError) as e:
        # (what unpicklers raise on bytes that are not a pickle: KeyError for a memo slot never written, ...)
        raise UpstreamFormatError(f"{path} is truncated or not a {FORMATS[fmt]} ({type(e).__name__}: {e})") from e
