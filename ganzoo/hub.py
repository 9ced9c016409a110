"""Saving, loading and sharing models: the only module that talks to the Hugging Face Hub.

A model is a folder, the same on disk, in ``checkpoints/`` and on the Hub (:mod:`ganzoo.cards` writes its card):

    config.json           {"ganzoo_version", "variant", "hparams", "parts", "training", "weights_sha256"}
    model.safetensors     the LightningModule's state dict (generator.*, generator_ema.*, discriminator.*)
    README.md             the model card, with Hub metadata in its YAML front matter
    samples.png           the model's preview: a fixed-seed sample grid, or input | output pairs
    training_config.yaml  the recipe LightningCLI ran, when the model was trained by ``ganzoo fit``
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ganzoo import registry
from ganzoo.cards import (
    CARD_NAME,
    CONFIG_NAME,
    SAMPLES_NAME,
    TRAINING_CONFIG_NAME,
    WEIGHTS_NAME,
    metric_lines,
    model_card,
)
from ganzoo.gan import GAN, save_grid

HUB_FILES = [CONFIG_NAME, WEIGHTS_NAME, CARD_NAME, SAMPLES_NAME, TRAINING_CONFIG_NAME]
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class CheckpointError(RuntimeError):
    """A checkpoint folder or file that cannot be loaded as it is: damaged, tampered or of an unknown kind."""


class HubError(ConnectionError):
    """A download (from the Hub or an upstream URL) that failed with nothing usable in the local cache."""


# --------------------------------------------------------------------------------------------------
# Saving


def save_pretrained(
    gan: GAN, folder: str | os.PathLike, *, name: str | None = None, license: str | None = None, num_samples: int = 64
) -> Path:
    """Write ``gan`` as a Hub folder (see the module docstring); returns the folder.

    Args:
        gan: the model.
        folder: where to write; created if needed, files already there are replaced.
        name: model name for the card (default: the folder's name); a registered name brings its entry's
            dataset, licence and metrics.
        license: licence for the card when ``name`` is not registered (default ``"other"``).
        num_samples: images in ``samples.png`` (seed 0).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = name or folder.resolve().name
    _save_weights(gan, folder)
    if gan.training_config:
        _atomic_write(folder / TRAINING_CONFIG_NAME, lambda p: Path(p).write_text(gan.training_config))
    else:
        (folder / TRAINING_CONFIG_NAME).unlink(missing_ok=True)  # a reused folder keeps no other model's recipe
    images, nrow = gan.preview(num_samples, seed=0)
    save_grid(images, folder / SAMPLES_NAME, nrow=nrow)
    entry = registry.get_pretrained(name) if registry.is_pretrained(name) else None
    measured = registry.measured(name, file_sha256(folder / WEIGHTS_NAME)) if entry else None
    card = model_card(gan, name, entry, license=license, measured=measured)
    _atomic_write(folder / CARD_NAME, lambda p: Path(p).write_text(card))
    return folder


def _save_weights(gan: GAN, folder: Path) -> None:
    """``model.safetensors`` and ``config.json``: all that :func:`load_folder` needs. Parts that were built fresh
    rather than trained or loaded (``gan.untrained_parts``) are left out, and ``parts`` lists what the folder holds."""
    state = {k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).contiguous()
             for k, v in gan.state_dict().items() if _part(k) not in gan.untrained_parts}  # fmt: skip
    _atomic_write(folder / WEIGHTS_NAME, lambda p: save_file(state, p, metadata={"format": "pt"}))
    config = {
        "ganzoo_version": _version(),
        "variant": gan.variant,
        "hparams": _json_hparams(gan),
        "parts": sorted({_part(k) for k in state}),
        "weights_sha256": file_sha256(folder / WEIGHTS_NAME),
        "training": {k: v for k, v in gan.training_state().items() if k != "training_config"},
    }
    _atomic_write(folder / CONFIG_NAME, lambda p: Path(p).write_text(json.dumps(config, indent=2) + "\n"))


def _part(key: str) -> str:
    """The network (or top-level buffer) a state-dict key belongs to: ``"discriminator"`` for ``discriminator.b4.*``."""
    return key.split(".", 1)[0]


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder and rename it, so a crash never leaves half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; a model folder is for sharing
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _json_hparams(gan: GAN) -> dict[str, Any]:
    params = inspect.signature(type(gan).__init__).parameters
    hparams = {k: v for k, v in dict(gan.hparams).items() if k in params}
    return json.loads(json.dumps(hparams))  # tuples -> lists; fails loudly on anything not JSON-simple


def _version() -> str:
    from ganzoo import __version__

    return __version__


# --------------------------------------------------------------------------------------------------
# Loading


def load(name_or_path: str | os.PathLike, *, revision: str | None = None, verify: bool = True) -> GAN:
    """Load a model in eval mode on the CPU.

    A folder's weights are checked against the sha256 its ``config.json`` records (or a registered entry's pinned
    one): a damaged or modified file fails instead of loading wrong numbers. ``verify=False`` skips the recorded
    check for very large local models (hashing 100 MiB took 0.07 s on this 2-core machine); pinned digests are
    always checked.

    ``name_or_path`` is resolved in this order (:func:`resolve`; ``ganzoo info``, ``sample`` and ``evaluate``
    take the same):

    1. a local folder (as written by :func:`save_pretrained` or ``ganzoo export``);
    2. a Lightning checkpoint (``.ckpt``) written by ``ganzoo fit``, with its counters and recipe;
    3. a pretrained name or alias from the registry (``"dcgan-mnist"``): its folder shipped in
       ``checkpoints/``, else its Hub repo at the pinned revision, from the Hugging Face cache or
       downloaded;
    4. a Hub repo id (``"owner/name"``) at ``revision`` (default: the main branch).

    Raises:
        UnknownModelError: an unknown name; the message lists the closest ones (and the right case).
        CheckpointError: a damaged, tampered or unknown checkpoint.
        HubError: a download that failed with nothing cached.
    """
    kind, where = resolve(name_or_path)
    if kind == "folder":
        return load_folder(where, verify=verify)
    if kind == "checkpoint":
        return load_lightning_checkpoint(where)
    if kind == "entry":
        return _load_entry(where)
    return load_folder(download(where, revision))


def resolve(name_or_path: str | os.PathLike) -> tuple[str, Any]:
    """What ``name_or_path`` names: ``("folder", Path)``, ``("checkpoint", Path)`` (a ``.ckpt``),
    ``("entry", Pretrained)`` or ``("repo", repo_id)``; an error naming the problem otherwise."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return "folder", path
    if path.is_file():
        if path.suffix == ".ckpt":
            return "checkpoint", path
        raise FileNotFoundError(f"{path} is a file: give the model folder that holds it ({CONFIG_NAME}, "
                                f"{WEIGHTS_NAME}), or a .ckpt written by ganzoo fit")  # fmt: skip
    name = str(name_or_path)
    if registry.is_pretrained(name):
        return "entry", registry.get_pretrained(name)
    if REPO_ID.match(name):
        return "repo", name
    if os.sep in name or name.startswith(".") or path.suffix == ".ckpt":
        raise FileNotFoundError(f"no model folder or checkpoint {path}")
    registry.get_pretrained(name)  # raises UnknownModelError with the closest names
    raise AssertionError("unreachable")


def _load_entry(entry: registry.Pretrained) -> GAN:
    if entry.folder:
        folder = registry.shipped_dir("checkpoints") / entry.folder
        if folder.is_dir():
            return load_folder(folder, sha256=entry.sha256)
        if not (entry.hub_repo or entry.url or entry.files):
            raise CheckpointError(
                f"{entry.name}: the shipped folder {folder} is missing; reinstall ganzoo (pip install ganzoo)"
            )
    if entry.hub_repo:
        return load_folder(download(entry.hub_repo, entry.revision), sha256=entry.sha256)
    return _load_upstream(entry)


_LICENCES_SHOWN: set[str] = set()


def _load_upstream(entry: registry.Pretrained) -> GAN:
    """Weights that are converted at load time: downloaded from their official URLs into ganzoo's cache, verified
    (the pinned sha256, else the one recorded at the first download), converted once and kept as a model folder."""
    from ganzoo.data import cache_dir

    root = cache_dir() / "upstream"
    converted = root / entry.name
    where = entry.url or entry.files[0][1]
    if entry.name not in _LICENCES_SHOWN:
        _LICENCES_SHOWN.add(entry.name)
        print(f"{entry.name}: {entry.source}, licence {entry.license} ({where}); see `ganzoo info {entry.name}`",
              file=sys.stderr)  # fmt: skip
    if (converted / CONFIG_NAME).is_file():
        return load_folder(converted)
    records = root / "sha256.json"
    known = json.loads(records.read_text()) if records.is_file() else {}
    if entry.url:
        downloads = [(entry.url, root / f"{entry.name}{Path(entry.url).suffix}", entry.sha256)]
    else:  # several files, converted together from one folder
        folder = root / f"{entry.name}-files"
        downloads = [(url, folder / f"{name}{Path(url).suffix}", None) for name, url in entry.files]
    for url, path, pinned in downloads:
        download_url(url, path, sha256=pinned or known.get(url))
        if url not in known and not pinned:
            known[url] = file_sha256(path)  # trust on first use; every later download must match
            _atomic_write(records, lambda p: Path(p).write_text(json.dumps(known, indent=1) + "\n"))
    source = downloads[0][1] if entry.url else downloads[0][1].parent
    gan = from_upstream(source, entry.variant, format=entry.format)
    converted.mkdir(parents=True, exist_ok=True)
    _save_weights(gan, converted)
    card = model_card(gan, entry.name, entry)  # with the licence, kept beside the converted weights
    _atomic_write(converted / CARD_NAME, lambda p: Path(p).write_text(card))
    return load_folder(converted)


def from_upstream(path: str | os.PathLike, variant: str, *, format: str | None = None) -> GAN:
    """A model from an upstream checkpoint file (or folder), read as plain data by the reader of ``format`` (by
    default the variant's ``upstream_format``, see :mod:`ganzoo.convert`), never running code the file carries,
    and converted by :func:`from_upstream_data`."""
    from ganzoo import convert

    cls = registry.get_variant(variant).cls
    if not cls.upstream_format:
        raise ValueError(f"no converter for upstream {variant} files")
    try:
        data = convert.read(path, format or cls.upstream_format)
    except convert.UpstreamFormatError as e:
        raise CheckpointError(str(e)) from e
    return from_upstream_data(data, variant, source=path)


def from_upstream_data(data: dict[str, Any], variant: str, *, source: os.PathLike | str = "upstream data") -> GAN:
    """A model built from upstream data by the variant's ``upstream_weights(data) -> (hparams, state_dict)``. Each
    network in the state loads strictly (a missing, unexpected or mis-shaped key is an error); the networks the
    data does not hold (a generator-only release has no discriminator) keep their fresh initialisation and are named
    in ``gan.untrained_parts``."""
    cls = registry.get_variant(variant).cls
    hparams, state = cls.upstream_weights(data)
    gan = cls(**hparams)
    load_state_strict(gan, state, source, parts=sorted({_part(k) for k in state}))
    return gan.eval()


def download(repo_id: str, revision: str | None = None, *, files: list[str] | None = None) -> Path:
    """A snapshot of a Hub model repo in the Hugging Face cache: taken from the cache when it is there,
    downloaded otherwise. Returns the snapshot folder.

    Args:
        repo_id: ``owner/name``.
        revision: branch, tag or commit (default: the main branch).
        files: the files to fetch (default: a ganzoo model folder's config, weights and card).
    """
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{constants.ENDPOINT}/{repo_id}" + (f" at revision {revision}" if revision else "")
    kwargs = dict(repo_id=repo_id, revision=revision, allow_patterns=files or [CONFIG_NAME, WEIGHTS_NAME, CARD_NAME])

    def failed(cause: str) -> HubError:
        offline = " (HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE else ""
        return HubError(
            f"could not download {where}{offline}, and the Hugging Face cache ({constants.HF_HUB_CACHE}) has no "
            f"copy. Connect to the network (or set HF_ENDPOINT to a mirror) and try again, or load a local "
            f"folder. Cause: {cause}"
        )

    def cached() -> Path | None:
        try:
            return Path(snapshot_download(**kwargs, local_files_only=True))
        except LocalEntryNotFoundError:
            return None

    # A pinned commit never changes: a cached copy needs no network at all. Otherwise one probe decides;
    # without it an unreachable Hub costs huggingface_hub's retries with back-off (about 23 s) before the same
    # answer. A cached copy of a branch is still used then, as huggingface_hub itself would.
    pinned = bool(revision and re.fullmatch(r"[0-9a-f]{40}", revision))
    if pinned and (path := cached()):
        return path
    if not constants.HF_HUB_OFFLINE and not _reachable(constants.ENDPOINT):
        if not pinned and (path := cached()):
            return path
        raise failed(f"cannot connect to {constants.ENDPOINT}")
    try:
        return Path(snapshot_download(**kwargs))
    except LocalEntryNotFoundError as e:  # before EntryNotFoundError, its base class: here it means unreachable
        error = e
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as e:
        raise HubError(f"{where}: not found on the Hub ({type(e).__name__}); check the repo id and revision") from e
    except (HfHubHTTPError, OSError) as e:
        error = e
    raise failed(f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}") from error


def _reachable(endpoint: str) -> bool:
    """Whether ``endpoint`` answers at all (any HTTP status), within a few seconds and without retries."""
    from huggingface_hub import get_session

    try:
        get_session().head(endpoint, timeout=5)
    except Exception:  # the session's transport errors (httpx or requests, by huggingface_hub version)
        return False
    return True


def read_config(folder: str | os.PathLike) -> dict[str, Any]:
    """The ``config.json`` of a checkpoint folder, checked to name a variant this ganzoo has."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{Path(folder)} is not a ganzoo model folder: it has no {CONFIG_NAME}")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} is not valid JSON ({e}); the file is damaged: re-download or re-export") from e
    if not isinstance(config, dict) or "variant" not in config or not isinstance(config.get("hparams"), dict):
        raise CheckpointError(f"{path} lacks 'variant' or 'hparams': it was not written by ganzoo.save_pretrained")
    try:
        registry.get_variant(config["variant"])
    except registry.UnknownModelError as e:
        raise CheckpointError(
            f"{path} names the variant {config['variant']!r}, which ganzoo {_version()} does not have "
            f"(written by ganzoo {config.get('ganzoo_version', '?')}; upgrading ganzoo may help). {e}"
        ) from e
    return config


def load_folder(folder: str | os.PathLike, *, sha256: str | None = None, verify: bool = True) -> GAN:
    """Load a checkpoint folder strictly; ``sha256`` pins the weights file's digest, else (with ``verify``) the
    digest ``config.json`` recorded when the folder was written is checked."""
    folder = Path(folder)
    config = read_config(folder)
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise CheckpointError(f"{folder} has no {WEIGHTS_NAME}")
    if sha256 is not None and (digest := file_sha256(weights)) != sha256:
        raise CheckpointError(
            f"{weights} has sha256 {digest}, not the registered {sha256}: the file is truncated or was modified. "
            f"Restore it (reinstall ganzoo, or delete it from the Hugging Face cache to download it again)."
        )
    recorded = config.get("weights_sha256")
    if sha256 is None and verify and recorded and (digest := file_sha256(weights)) != recorded:
        raise CheckpointError(
            f"{weights} has sha256 {digest}, not the {recorded} its {CONFIG_NAME} records: the file is damaged or "
            f"was modified after it was written. Restore it from its source (re-export or re-download), or load "
            f"it anyway with ganzoo.load(..., verify=False)."
        )
    try:
        state = load_file(weights)
    except (SafetensorError, OSError) as e:
        raise CheckpointError(
            f"{weights} cannot be read as safetensors ({e}): it is truncated or corrupt. "
            f"Restore it from its source (re-download or re-export)."
        ) from e
    gan = build(config["variant"], config["hparams"], where=folder / CONFIG_NAME)
    load_state_strict(gan, state, weights, parts=config.get("parts"))
    gan.load_training_state(config.get("training", {}))
    return gan.eval()


def build(variant: str, hparams: dict[str, Any], *, where: os.PathLike | str) -> GAN:
    """An untrained model of ``variant`` from saved ``hparams``, with errors that name the file."""
    cls = registry.get_variant(variant).cls
    params = inspect.signature(cls.__init__).parameters
    unknown = sorted(k for k in hparams if k not in params and not k.startswith("_"))
    if unknown:
        raise CheckpointError(f"{where}: {variant} has no hparams {unknown}; the file is from another ganzoo version")
    try:
        return cls(**{k: v for k, v in hparams.items() if k in params})
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: cannot build {variant} from its hparams: {e}") from e


def load_state_strict(
    gan: GAN, state: dict[str, torch.Tensor], source: os.PathLike | str, *, parts: list[str] | None = None
) -> None:
    """``load_state_dict(strict=True)`` with an error that names missing, unexpected and mis-shaped keys.

    ``parts`` (a folder's ``config.json``) are the networks the file holds: those load strictly, the model's other
    parts keep their fresh initialisation and are recorded in ``gan.untrained_parts``.
    """
    gan.adapt_to_state(state)
    expected = gan.state_dict()
    fresh = set()
    if parts is not None:
        fresh = {_part(k) for k in expected} - set(parts)
        expected = {k: v for k, v in expected.items() if _part(k) not in fresh}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k}: {list(state[k].shape)} vs {list(v.shape)}" for k, v in expected.items()
              if k in state and state[k].shape != v.shape]  # fmt: skip
    if missing or unexpected or shapes:
        groups = (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes))
        parts = [f"{label} ({len(keys)}): {', '.join(keys[:8])}{' ...' if len(keys) > 8 else ''}"
                 for label, keys in groups if keys]  # fmt: skip
        raise CheckpointError(f"{source} does not match {gan.variant}{dict(gan.hparams)}: " + "; ".join(parts))
    gan.load_state_dict(state, strict=not fresh)
    gan.untrained_parts = fresh


def load_lightning_checkpoint(path: str | os.PathLike) -> GAN:
    """A model from a ``.ckpt`` written by ``ganzoo fit`` (weights, hparams, counters and recipe)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path} cannot be read as a Lightning checkpoint: {e}") from e
    meta = ckpt.get("ganzoo") if isinstance(ckpt, dict) else None
    if not meta:
        raise CheckpointError(f"{path} was not written by a ganzoo model (no 'ganzoo' section)")
    gan = build(meta["variant"], dict(ckpt.get("hyper_parameters", {})), where=path)
    load_state_strict(gan, ckpt["state_dict"], path)
    gan.load_training_state(meta)
    return gan.eval()


def average_checkpoints(path: str | os.PathLike, from_kimg: float, parts: Sequence[str] = ("generator",)) -> GAN:
    """The model of the checkpoint ``path`` (a ``.ckpt`` written by ``ganzoo fit``) with the networks of ``parts`` set
    to the mean of their weights over the run's checkpoints from ``from_kimg`` thousand images to ``path``'s own.

    ``theta_avg = (1 / K) sum_k theta(t_k)`` over the ``kimg=....ckpt`` files beside ``path`` whose clock lies in
    ``[from_kimg, kimg(path)]`` (``path`` itself included), floating buffers (batch norm's running statistics) with the
    weights: checkpoint averaging (Vaswani et al. 2017, arXiv 1706.03762, section 6.1), the post-hoc form of
    stochastic weight averaging (Izmailov et al. 2018, arXiv 1803.05407). Late in a GAN's training a generator moves
    around a point rather than to it; a single iterate carries texture that changes from one to the next (pix2pix's
    speckle on flat map areas), which the mean cancels. The other networks, the counters and the recipe are
    ``path``'s; ``gan.averaged`` records what was averaged, and the model card says so.
    """
    path = Path(path)
    gan = load_lightning_checkpoint(path)
    for part in parts:
        if not isinstance(getattr(gan, part, None), torch.nn.Module):
            raise ValueError(f"cannot average {part!r}: {gan.variant} has the networks "
                             f"{', '.join(n for n, _ in gan.named_children())}")  # fmt: skip
        if part in gan.ema_networks:  # its samples come from the EMA copy, which the mean would not change
            raise ValueError(f"{part} has an EMA copy ({part}_ema), which already averages it and is what the model "
                             "samples from: export without averaging")  # fmt: skip
    end = gan.images_seen / 1000
    if not 0 <= from_kimg <= end:
        raise ValueError(f"--average-from {from_kimg} kimg lies outside the run, which is at {end:g} kimg")
    # The kimg=....ckpt files before path's clock (a kimg= twin of last.ckpt is path itself), then path.
    earlier = [(float(f.name[len("kimg=") :].split("-")[0]), f) for f in sorted(path.parent.glob("kimg=*.ckpt"))]
    earlier = [(kimg, f) for kimg, f in earlier if from_kimg <= kimg < end]
    if not earlier:
        raise ValueError(f"no checkpoint of the run beside {path} from {from_kimg:g} kimg to average with it: name an "
                         "earlier start (GANCheckpoint(every_n_kimg=...) keeps the kimg=....ckpt files)")  # fmt: skip
    prefixes = tuple(f"{part}." for part in parts)
    targets = {
        k: v for k, v in gan.state_dict(keep_vars=True).items() if k.startswith(prefixes) and v.is_floating_point()
    }
    sums = {k: v.detach().to(torch.float64, copy=True) for k, v in targets.items()}  # path's own, already loaded
    for _, f in earlier:
        state = torch.load(f, map_location="cpu", weights_only=True)["state_dict"]
        for k in sums:
            sums[k] += state[k].to(torch.float64)
    with torch.no_grad():
        for k, v in targets.items():
            v.copy_(sums[k] / (len(earlier) + 1))
    gan.averaged = {"parts": list(parts), "kimg": [*(k for k, _ in earlier), end]}
    return gan


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_url(url: str, path: str | os.PathLike, *, sha256: str | None = None, progress: bool = True) -> Path:
    """The file at ``url``, kept at ``path``: downloaded once (with a progress bar), then read from there.

    The download goes to a temporary file beside ``path`` and is renamed only when complete and verified: against
    ``sha256``, else against the head of its sha256 that a torch.hub-style name carries. A file already at
    ``path`` (a download, or a copy the user put there) that fails the same check is fetched again.

    Raises:
        HubError: no network (or a refused request) and no copy at ``path``.
        CheckpointError: the downloaded bytes do not have the pinned ``sha256`` (or the name's).
    """
    import urllib.error
    import urllib.request

    from tqdm.auto import tqdm

    path = Path(path)
    # A torch.hub-style name ("celebaHQ_s6_i80000-6196db68.pth") carries the first hex digits of its sha256 (a
    # letter among them, so that a date or an iteration count is not taken for one): checked when nothing is pinned.
    named = re.search(r"-((?=[0-9]*[a-f])[0-9a-f]{8,64})\.[A-Za-z0-9]+$", url.split("#")[-1].rsplit("/", 1)[-1])
    prefix = named.group(1) if named and sha256 is None else None

    def wrong(digest: str) -> str | None:
        if sha256 is not None and digest != sha256:
            return f"is {digest}, not the pinned {sha256}"
        if prefix and not digest.startswith(prefix):
            return f"is {digest}, not starting with the {prefix} its name carries"
        return None

    stale = ""
    if path.is_file():
        if sha256 is None and prefix is None:
            return path
        if not (why := wrong(file_sha256(path))):
            return path
        stale = f" (the copy at {path} is damaged or another file: its sha256 {why})"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=30) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=path.name, disable=not progress) as bar:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if why := wrong(digest.hexdigest()):
            raise CheckpointError(f"{url}: the download's sha256 {why}: it is damaged or the file changed upstream; "
                                  "nothing was kept")  # fmt: skip
        os.replace(tmp, path)
    except (urllib.error.URLError, OSError) as e:
        raise HubError(
            f"could not download {url} ({type(e).__name__}: {getattr(e, 'reason', e)}){stale}. Connect to the "
            f"network and try again, or fetch the file yourself and put it at {path}"
        ) from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


# --------------------------------------------------------------------------------------------------
# Sharing


def push_to_hub(
    folder_or_gan: str | os.PathLike | GAN,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Upload ganzoo model",
    space: str | bool | None = None,
) -> str:
    """Create ``repo_id`` on the Hub if needed and upload the model folder in one commit; returns the commit URL.

    A folder is loaded first, so a damaged one is refused before anything is uploaded. A model is written
    with :func:`save_pretrained` to a temporary folder. ``space`` (a Space repo id, or ``True`` for one of the
    model's own id) also uploads a Gradio Space that serves ``ganzoo demo`` for the model (:func:`write_space`),
    and the model card uploaded links to it.
    """
    from huggingface_hub import HfApi, get_token

    if not REPO_ID.match(repo_id):
        raise ValueError(f"repo id {repo_id!r}: give it as owner/name, e.g. you/dcgan-mnist")
    space_id = repo_id if space is True else space or None
    if space_id is not None and not REPO_ID.match(space_id):
        raise ValueError(f"Space id {space_id!r}: give it as owner/name, e.g. you/dcgan-mnist")
    token = token or get_token()
    if not token:
        raise HubError("no Hugging Face token: run `huggingface-cli login` (or `hf auth login`), or set HF_TOKEN")
    with tempfile.TemporaryDirectory() as tmp:
        if isinstance(folder_or_gan, GAN):
            folder = save_pretrained(folder_or_gan, Path(tmp) / repo_id.split("/")[-1])
        else:
            folder = Path(folder_or_gan)
            load_folder(folder)
        if space_id is not None:
            space_folder = write_space(Path(tmp) / "space", repo_id)
            folder = _with_space_link(folder, Path(tmp) / "model", space_id)
        api = HfApi(token=token)
        with _push_errors(repo_id):
            api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
            commit = api.upload_folder(
                repo_id=repo_id,
                repo_type="model",
                folder_path=folder,
                allow_patterns=HUB_FILES,
                commit_message=commit_message,
            )
        if space_id is not None:
            with _push_errors(space_id):
                api.create_repo(space_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
                api.upload_folder(
                    repo_id=space_id,
                    repo_type="space",
                    folder_path=space_folder,
                    allow_patterns=SPACE_FILES,
                    commit_message=f"ganzoo demo of {repo_id}",
                )
    return str(commit.commit_url)


@contextlib.contextmanager
def _push_errors(repo_id: str) -> Iterator[None]:
    """The Hub's refusals and the network's failures inside the block as one-line :class:`HubError` s naming the
    fix."""
    from huggingface_hub import constants
    from huggingface_hub.errors import HfHubHTTPError

    try:
        yield
    except HfHubHTTPError as e:
        status = getattr(e.response, "status_code", None)
        fix = ("the token was refused: log in again (`huggingface-cli login`) or set HF_TOKEN to a token with "
               "write access" if status in (401, 403) else "see the Hub's answer")  # fmt: skip
        raise HubError(f"the Hub refused the push to {repo_id} (HTTP {status}): {fix}. "
                       f"{str(e).splitlines()[0]}") from e  # fmt: skip
    except Exception as e:
        # The session's transport errors: httpx's (TransportError) or requests' (OSError), by hub version.
        if not (isinstance(e, OSError) or any(c.__name__ == "TransportError" for c in type(e).__mro__)):
            raise
        raise HubError(f"could not reach {constants.ENDPOINT} to push {repo_id} ({type(e).__name__}): check the "
                       "network (or HF_ENDPOINT) and try again") from e  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Spaces

SPACE_FILES = ["app.py", "requirements.txt", "README.md"]
SPACE_APP = '''"""A Hugging Face Space for {repo_id}: the page `ganzoo demo {repo_id}` serves.

Written by `ganzoo push --space`. The model is downloaded from its Hub repo when the Space starts; `python app.py`
runs it anywhere.
"""

from ganzoo.demo import launch

if __name__ == "__main__":
    launch("{repo_id}")
'''


def write_space(folder: str | os.PathLike, repo_id: str) -> Path:
    """Write a Gradio Space for the model repo ``repo_id`` into ``folder``: ``app.py`` (``ganzoo demo``'s page,
    loading the model from the Hub), ``requirements.txt`` (this ganzoo release, with its demo extra) and the Space
    card (``sdk: gradio`` at the installed Gradio's version, the model linked); returns the folder."""
    from importlib.metadata import PackageNotFoundError, version

    from huggingface_hub import SpaceCard, SpaceCardData

    if not REPO_ID.match(repo_id):
        raise ValueError(f"repo id {repo_id!r}: give it as owner/name, e.g. you/dcgan-mnist")
    try:
        gradio = version("gradio")
    except PackageNotFoundError:
        raise ValueError("a Space pins the Gradio it runs on: pip install 'ganzoo[demo]' first") from None
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = SpaceCardData(
        title=repo_id.split("/")[1][:30],
        sdk="gradio",
        sdk_version=gradio,
        app_file="app.py",
        models=[repo_id],
        tags=["ganzoo", "gan"],
        short_description=f"ganzoo demo of {repo_id}"[:60],
    )
    card = SpaceCard(
        f"---\n{data.to_yaml()}\n---\n\n# {repo_id}\n\nThe interactive page of "
        f"[{repo_id}](https://huggingface.co/{repo_id}), served by `ganzoo demo` (ganzoo {_version()}). The same "
        f"page runs locally: `pip install 'ganzoo[demo]=={_version()}'` then `ganzoo demo {repo_id}`.\n"
    )
    texts = {
        "app.py": SPACE_APP.format(repo_id=repo_id),
        "requirements.txt": f"ganzoo[demo]=={_version()}\n",
        "README.md": str(card),
    }
    for name, text in texts.items():
        _atomic_write(folder / name, lambda p, t=text: Path(p).write_text(t))
    return folder


def _with_space_link(folder: Path, copy: Path, space_id: str) -> Path:
    """``folder``'s Hub files in ``copy``, its card linking the Space (as :func:`ganzoo.cards.model_card` would)."""
    import shutil

    copy.mkdir(parents=True)
    for name in HUB_FILES:
        if (folder / name).is_file():
            shutil.copy2(folder / name, copy / name)
    card = copy / CARD_NAME
    if card.is_file():
        text, link = card.read_text(), f"Try it in the browser: [Space](https://huggingface.co/spaces/{space_id})"
        if link not in text:
            text = text.replace("\n## Training\n", f"\n{link}\n\n## Training\n", 1)
        card.write_text(text)
    return copy


# --------------------------------------------------------------------------------------------------
# Info


def info(name_or_path: str) -> dict[str, Any]:
    """What is known of a model (named as :func:`load` takes it) without downloading its weights: registry entry,
    architecture and training record. A Hub repo's config and card are downloaded."""
    out: dict[str, Any] = {}
    kind, where = resolve(name_or_path)
    config, folder, gan = None, None, None
    if kind == "folder":
        config, folder = read_config(where), where
    elif kind == "repo":
        folder = download(where, files=[CONFIG_NAME, CARD_NAME])
        config = read_config(folder)
    elif kind == "checkpoint":
        gan = load_lightning_checkpoint(where)
        config = {"variant": gan.variant, "hparams": _json_hparams(gan), "training": gan.training_state(),
                  "parts": sorted({_part(k) for k in gan.state_dict()} - gan.untrained_parts)}  # fmt: skip
        config["training"].pop("training_config")
    else:
        out.update({k: v for k, v in vars(where).items() if v not in (None, (), [], "")})
        folder = registry.shipped_dir("checkpoints") / where.folder if where.folder else None
        if folder is not None and (folder / CONFIG_NAME).is_file():
            config = read_config(folder)
    if config is not None:
        if gan is None:  # a checkpoint's model is loaded already
            gan = build(config["variant"], config["hparams"], where=folder / CONFIG_NAME)
        out["variant"] = config["variant"]
        out["architecture"] = {
            "class": f"{type(gan).__module__}.{type(gan).__qualname__}",
            "hparams": config["hparams"],
            "parameters": {n: sum(p.numel() for p in m.parameters()) for n, m in gan.named_children()},
        }
        if gan.num_classes:
            out["classes"] = {i: name for i, name in enumerate(gan.class_names)}
        out["training"] = config.get("training", {})
        parts = config.get("parts")
        untrained = sorted({_part(k) for k in gan.state_dict()} - set(parts)) if parts is not None else []
        if untrained:
            out["untrained_parts"] = {p: "not in this folder: built fresh (random) when loaded" for p in untrained}
        out["folder" if folder else "checkpoint"] = str(folder or where)
        if kind == "entry" and (folder / WEIGHTS_NAME).is_file():
            rows = registry.measured(where.name, file_sha256(folder / WEIGHTS_NAME))
            out["metrics"] = {
                label + (f" ({column})" if column else ""): f"{m['mean']:.4g}; {protocol}"
                for column, _, label, m, protocol in metric_lines(rows)
            }
    return out
