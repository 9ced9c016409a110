"""The registry: every GAN variant and every pretrained entry of the zoo, by name.

Variants register with :func:`register_gan` (one decorator per model file); pretrained weights with
:func:`register_pretrained`. Everything else (``ganzoo.list``, ``ganzoo.create``, ``ganzoo.load``, the
CLI, the tests, the README's model table) reads from here.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ganzoo.gan import GAN

TASKS = ("generation", "conditional-generation", "translation", "super-resolution")
IMAGE_TASKS = ("translation", "super-resolution")  # the generator takes an image (ImageToImageGAN)


@dataclass(frozen=True)
class Variant:
    """A registered GAN family: its LightningModule class, task and smallest valid config."""

    name: str
    cls: type[GAN]
    task: str
    tiny: dict[str, Any]


@dataclass(frozen=True)
class Pretrained:
    """A pretrained entry: ``<variant>-<dataset>[-<resolution or scale>]`` and where its weights live.

    Exactly one source of weights is required; ``load`` tries them in this order: ``folder`` (a folder
    of this repository's ``checkpoints/``, installed with the package), the Hugging Face cache, then a
    download of ``hub_repo`` at the pinned ``revision``. ``url`` is an official upstream file that is
    converted at load time (weights whose licence forbids re-hosting), read as ``format`` (a reader of
    :mod:`ganzoo.convert`; by default the variant's ``upstream_format``). ``files`` are several official files
    converted together, ``(name, url)`` pairs downloaded into one folder as ``<name><suffix>``: e.g. the two
    directions of a CycleGAN pair as a training folder's ``latest_net_G_A`` and ``latest_net_G_B``.
    ``published`` quotes what the papers report for the setting, for the model card to set beside ganzoo's own
    measurements. A translation model's ``data_direction`` says which way of ``dataset``'s (A, B) pairs its
    ``a2b`` runs: ``"b2a"`` when it maps the data's B to A (pix2pix-map2sat on maps, whose A is the photo).
    ``seen`` names evaluation sets the model was trained on (a super-resolution model trained on BSD100's HR images:
    ``("BSD100",)``), which the leaderboard marks.
    """

    name: str
    variant: str
    dataset: str
    license: str
    description: str = ""
    folder: str | None = None
    hub_repo: str | None = None
    revision: str | None = None
    url: str | None = None
    sha256: str | None = None
    recipe: str | None = None
    source: str = "trained by ganzoo"
    resolution: int | None = None
    aliases: tuple[str, ...] = ()
    published: str = ""
    format: str | None = None
    files: tuple[tuple[str, str], ...] = ()
    data_direction: str = "a2b"
    seen: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not (self.folder or self.hub_repo or self.url or self.files):
            raise ValueError(f"pretrained entry {self.name!r} names no weights: give folder, hub_repo, url or files")
        if self.data_direction not in ("a2b", "b2a"):
            raise ValueError(f"pretrained entry {self.name!r}: data_direction must be 'a2b' or 'b2a'")
        if self.hub_repo and not self.revision:
            raise ValueError(f"pretrained entry {self.name!r}: a hub_repo needs a pinned revision")


class UnknownModelError(ValueError):
    """A name that is neither a registered variant nor a pretrained entry nor an alias."""


_VARIANTS: dict[str, Variant] = {}
_PRETRAINED: dict[str, Pretrained] = {}
_ALIASES: dict[str, str] = {}


def register_gan(name: str, *, tiny: dict[str, Any], task: str = "generation") -> Callable[[type[GAN]], type[GAN]]:
    """Class decorator that adds a GAN variant to the registry.

    Args:
        name: the variant's name, e.g. ``"dcgan"``.
        tiny: the smallest valid hparams, used by the registry-wide tests.
        task: one of :data:`TASKS`.
    """
    if task not in TASKS:
        raise ValueError(f"task {task!r} is not one of {TASKS}")

    def decorator(cls: type[GAN]) -> type[GAN]:
        if name in _VARIANTS and _VARIANTS[name].cls is not cls:
            raise ValueError(f"variant {name!r} is already registered by {_VARIANTS[name].cls.__qualname__}")
        cls.variant = name
        cls.task = task
        _VARIANTS[name] = Variant(name, cls, task, dict(tiny))
        return cls

    return decorator


def register_pretrained(*entries: Pretrained) -> None:
    """Add pretrained entries (and their aliases) to the registry."""
    for entry in entries:
        for key in (entry.name, *entry.aliases):
            if key in _PRETRAINED or key in _ALIASES:
                raise ValueError(f"pretrained name {key!r} is registered twice")
        _PRETRAINED[entry.name] = entry
        for alias in entry.aliases:
            _ALIASES[alias] = entry.name


def _populate() -> None:
    import ganzoo.models  # noqa: F401  (importing the model files fills the registry)


def variants() -> dict[str, Variant]:
    """All registered variants, by name."""
    _populate()
    return dict(_VARIANTS)


def get_variant(name: str) -> Variant:
    """The registered variant ``name``; raises :class:`UnknownModelError` listing close names."""
    _populate()
    if name not in _VARIANTS:
        raise UnknownModelError(_unknown_message(name, "GAN variant", list(_VARIANTS)))
    return _VARIANTS[name]


def list_models(
    pattern: str = "*", *, variant: str | None = None, task: str | None = None, pretrained: bool = True
) -> list[str]:
    """Names in the zoo matching a shell-style wildcard ``pattern`` (``"stylegan2-*"``).

    Args:
        pattern: ``fnmatch`` pattern on the name (aliases match too, the entry's own name is returned).
        variant: keep only entries of this variant.
        task: keep only entries whose variant has this task (see :data:`TASKS`).
        pretrained: list pretrained entries (default) or, if False, the registered variants.
    """
    _populate()
    if task is not None and task not in TASKS:
        raise ValueError(f"task {task!r} is not one of {TASKS}")
    if not pretrained:
        return sorted(
            n
            for n, v in _VARIANTS.items()
            if fnmatch.fnmatch(n, pattern) and variant in (None, n) and task in (None, v.task)
        )
    names = set()
    for name, entry in _PRETRAINED.items():
        if not any(fnmatch.fnmatch(n, pattern) for n in (name, *entry.aliases)):
            continue
        if variant not in (None, entry.variant):
            continue
        if task is not None and _VARIANTS[entry.variant].task != task:
            continue
        names.add(name)
    return sorted(names)


def get_pretrained(name: str) -> Pretrained:
    """The pretrained entry called ``name`` (or one of its aliases).

    Raises:
        UnknownModelError: with the closest registered names.
    """
    _populate()
    name = _ALIASES.get(name, name)
    if name not in _PRETRAINED:
        raise UnknownModelError(_unknown_message(name, "pretrained model", [*_PRETRAINED, *_ALIASES]))
    return _PRETRAINED[name]


def is_pretrained(name: str) -> bool:
    _populate()
    return name in _PRETRAINED or name in _ALIASES


def create(variant: str, **hparams: Any) -> GAN:
    """An untrained model of ``variant`` built from ``hparams`` (the variant's defaults otherwise)."""
    return get_variant(variant).cls(**hparams)


def _unknown_message(name: str, kind: str, candidates: list[str]) -> str:
    same = [c for c in candidates if c.lower() == name.lower()]
    if same:
        return f"unknown {kind} {name!r}: names are lower case. Did you mean: {same[0]}?"
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.4)
    # Prefix matches catch what edit distance misses: "stylegan" -> "stylegan2-ffhq-1024".
    close += [c for c in sorted(candidates) if c.startswith(name.split("-")[0]) and c not in close][: 5 - len(close)]
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return f"unknown {kind} {name!r}.{hint} `ganzoo list` shows every name."


def shipped_dir(kind: str) -> Path:
    """The folder of shipped ``checkpoints``, ``recipes`` or ``benchmarks`` (the leaderboard's JSON).

    Installed from a wheel they live inside the package (``ganzoo/_shipped``); in a source checkout or an
    editable install they are the repository's top-level folders.
    """
    if kind not in ("checkpoints", "recipes", "benchmarks"):
        raise ValueError(kind)
    packaged = Path(str(resources.files("ganzoo"))) / "_shipped" / kind
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / kind


def measured(
    name: str, checkpoint_sha256: str | None = None, rows: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The leaderboard rows (``benchmarks/leaderboard.json``) of entry ``name``, each followed by the reference
    rows measured under the same protocol (real data, trivial baselines); with ``checkpoint_sha256``, only rows
    measured on those weights.

    These are the only metrics a model card or ``ganzoo info`` states: measured by ``benchmarks/leaderboard.py``,
    never typed by hand. ``rows`` replaces the shipped file's rows (the leaderboard script passes its own).
    """
    if rows is None:
        path = shipped_dir("benchmarks") / "leaderboard.json"
        rows = json.loads(path.read_text())["rows"] if path.is_file() else []
    out = []
    for row in rows:
        if row["name"] != name or row["kind"] != "model":
            continue
        if checkpoint_sha256 and row["protocol"]["generated"].get("checkpoint_sha256") != checkpoint_sha256:
            continue
        out.append(row)
        out += [r for r in rows if r["kind"] != "model" and r["key"] == row["key"] and r.get("of") in (None, name)]
    return out


def recipe_path(name: str) -> Path:
    """The recipe YAML that trains entry ``name`` (``dcgan-mnist`` -> ``recipes/dcgan-mnist.yaml``)."""
    _populate()
    folder = shipped_dir("recipes")
    path = folder / f"{_ALIASES.get(name, name)}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.yaml"))
        raise UnknownModelError(_unknown_message(name, "recipe", known))
    return path
