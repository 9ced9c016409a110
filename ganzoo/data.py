"""LightningDataModules for the zoo's data sets, read from local files.

Every source yields ``(image, label)`` pairs: ``image`` float ``[C, H, W]`` in [-1, 1], ``label`` an int64
class id (``-1`` where the data has none). The real data sets are found under the folder named by the
``GANZOO_DATA`` environment variable (or a ``root`` argument), laid out as:

    $GANZOO_DATA/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
    $GANZOO_DATA/FashionMNIST/raw/... (same names; or Debian's dataset-fashion-mnist package)
    $GANZOO_DATA/cifar10/cifar10-jpeg.tar   (train/<class>/*.jpg, test/<class>/*.jpg)

Paired (translation), unpaired and super-resolution sources subclass :class:`ImageDataModule` the same
way: a ``build_dataset(split)`` and the shape they produce.
"""

from __future__ import annotations

import gzip
import math
import os
import shutil
import tarfile
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from ganzoo.registry import IMAGE_TASKS

# Lightning warns that a mid-epoch resume is inexact unless the DataLoader is stateful; ResumableSampler
# makes it exact without that interface.
warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch ended")

DATA_ENV = "GANZOO_DATA"
CACHE_ENV = "GANZOO_CACHE"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class DataNotFoundError(FileNotFoundError):
    """Real data that is not where ganzoo looks for it; the message says what to set and the layout."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder of the real data sets: ``root`` if given, else ``$GANZOO_DATA``."""
    if root is None:
        root = os.environ.get(DATA_ENV)
        if not root:
            raise DataNotFoundError(
                f"no data folder: set {DATA_ENV} to the folder holding the data sets (or pass root=...). "
                f"Expected layout:\n{__doc__.split('laid out as:')[1].split('Paired')[0].rstrip()}"
            )
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataNotFoundError(f"data folder {str(path)!r} (from root= or {DATA_ENV}) does not exist")
    return path


def cache_dir() -> Path:
    """Where extracted archives are kept: ``$GANZOO_CACHE`` or ``~/.cache/ganzoo``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "ganzoo").expanduser()


def to_unit_range(images_uint8: Tensor) -> Tensor:
    """uint8 ``[..., C, H, W]`` in [0, 255] to float in [-1, 1]: ``x / 127.5 - 1``."""
    return images_uint8.float().div_(127.5).sub_(1.0)


def resize_uint8(images: Tensor, size: int) -> Tensor:
    """Resize uint8 ``[N, C, H, W]`` to ``size x size`` (bilinear, antialiased when shrinking)."""
    if images.shape[-2:] == (size, size):
        return images
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8)


class TensorImageDataset(Dataset):
    """In-memory uint8 images ``[N, C, H, W]`` with int64 labels, served as floats in [-1, 1]."""

    def __init__(self, images: Tensor, labels: Tensor, classes: Sequence[str] = ()) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"expected uint8 images [N, C, H, W], got {images.dtype} {list(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        # Checked once here, so that training steps need not read labels back from the device to check them.
        if classes and len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
            bad = sorted({int(x) for x in labels if not 0 <= x < len(classes)})[:10]
            raise ValueError(f"labels {bad} are not class ids of the {len(classes)} classes {tuple(classes)[:10]}")
        self.images, self.labels, self.classes = images, labels.long(), tuple(classes)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return to_unit_range(self.images[index]), self.labels[index]


def read_idx(path: Path) -> Tensor:
    """A (gzipped) IDX file of unsigned bytes as a uint8 tensor: images ``[N, H, W]`` or labels ``[N]``."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    expected = offset + int(torch.tensor(shape).prod())
    if len(data) != expected:
        raise ValueError(f"{path} is truncated or corrupt: {len(data)} bytes, expected {expected} for shape {shape}")
    return torch.frombuffer(bytearray(data[offset:]), dtype=torch.uint8).view(*shape)


class ResumableSampler(DistributedSampler):
    """A seeded shuffle, sharded over processes, that can start part-way through an epoch.

    The order of epoch ``e`` is ``randperm(n)`` under seed ``seed + e``; process ``r`` of ``w`` takes every
    ``w``-th index from ``r`` (so ``w`` processes with batch ``b`` see the samples of one process with
    batch ``w * b``). ``skip`` drops the first samples of the next iteration once: what a run resumed
    mid-epoch has already consumed. Being a ``DistributedSampler``, Lightning leaves it in place and
    calls ``set_epoch`` on it.

    ``loader_generator`` is for the DataLoader: it draws each epoch's worker base seed from it, re-seeded by
    ``set_epoch``, instead of from the global RNG, which training's own draws (noise, penalties, dropout) use: a
    run resumed from a checkpoint written at an epoch's last batch would otherwise draw that seed before its RNG
    states are restored, and the uninterrupted run after.
    """

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0, seed: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.skip = 0
        # A dataset with random per-sample transforms gets (epoch, index) keys to seed them with (in any worker).
        self.with_epoch = isinstance(dataset, SeededTransforms)
        self.loader_generator = torch.Generator().manual_seed(seed)

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.loader_generator.manual_seed(self.seed + 1_000_003 * (epoch + 1) + self.rank)

    def __iter__(self):
        indices = list(super().__iter__())
        skip, self.skip = self.skip, 0
        return iter([(self.epoch, i) for i in indices[skip:]] if self.with_epoch else indices[skip:])


Schedule = Callable[[int], "tuple[int | None, int | None]"]


class ScheduledBatchSampler(Sampler[list]):
    """This process's batches, each as the model's schedule says at that point of training: ``schedule(images)``
    gives ``(batch size per process, image side)`` (``None``: ``batch_size``, the data's own size), where
    ``images`` counts the images of all ``world`` processes so far; ProGAN's batch size and resolution per stage.
    Each index comes with its image side, ``(index, side)``, for :class:`AtSize`. Batches are cut from passes over
    ``sampler`` (pass ``p`` is its epoch ``p``; the last incomplete batch of a pass is dropped), one after another
    without end: Lightning sees one endless epoch, and training ends by its limits (``StopAt``, ``max_steps``).

    Where the stream stands is a function of the clock alone, replayed from 0: a run resumed at ``images`` carries
    on with the pass, and the batch within it, that an uninterrupted run would be at.
    """

    def __init__(self, sampler: ResumableSampler, schedule: Schedule, batch_size: int, world: int, images: int) -> None:
        self.sampler, self.schedule, self.batch_size = sampler, schedule, batch_size
        self.world, self.images = world, images

    def plan(self, images: int) -> list[tuple[int, int | None]]:
        """The ``(batch size, image side)`` of each batch of a pass that starts at ``images``."""
        batches, used, n = [], 0, self.sampler.num_samples
        while True:
            b, side = self.schedule(images)
            b = int(b or self.batch_size)
            if b < 1:
                raise ValueError(f"the schedule asks for a batch of {b} images at {images} images seen")
            if used + b > n:
                if not batches:
                    raise ValueError(f"a batch of {b} is more than this process's {n} images of the data")
                return batches
            batches.append((b, side))
            used, images = used + b, images + b * self.world

    def position(self, images: int) -> tuple[int, int, int]:
        """``(pass, clock at its start, batches of it done)`` at ``images``."""
        p, start = 0, 0
        while True:
            sizes = [b for b, _ in self.plan(start)]
            done, clock = 0, start
            while done < len(sizes) and clock < images:
                clock, done = clock + sizes[done] * self.world, done + 1
            if clock == images and done < len(sizes):
                return p, start, done
            if clock > images:
                raise RuntimeError(f"the clock ({images} images) does not fall on a batch of this data's schedule: "
                                   "resume with the data the run was trained on")  # fmt: skip
            p, start = p + 1, clock

    def __iter__(self) -> Iterator[list]:
        p, start, done = self.position(self.images)
        while True:
            batches = self.plan(start)
            self.sampler.set_epoch(p)
            self.sampler.skip = sum(b for b, _ in batches[:done])
            indices = list(self.sampler)
            offset = 0
            for b, side in batches[done:]:
                yield [(i, side) for i in indices[offset : offset + b]]
                offset += b
            p, start, done = p + 1, start + sum(b for b, _ in batches) * self.world, 0


class AtSize(Dataset):
    """``dataset`` read by ``(key, side)``: its item ``key`` with the image box-filtered (mean over blocks) to
    ``side`` x ``side`` (``None``: as it is). What :class:`ScheduledBatchSampler`'s indices are read through."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[Any, int | None]) -> tuple:
        index, side = key
        image, *rest = self.dataset[index]
        if side is not None and image.shape[-1] != side:
            factor = image.shape[-1] // side
            if factor * side != image.shape[-1]:
                raise ValueError(f"images of side {image.shape[-1]} cannot be box-filtered to {side}")
            image = F.avg_pool2d(image[None], factor)[0]
        return (image, *rest)


class _ScheduledLoader(DataLoader):
    """A DataLoader of a :class:`ScheduledBatchSampler` whose ``sampler`` is the ResumableSampler that batch
    sampler draws from: Lightning gives every loader without a DistributedSampler one of its own under DDP, which
    would replace this process's shard and the skip of a resumed run."""

    def __init__(self, dataset: Dataset, batch_sampler: ScheduledBatchSampler, **kwargs: Any) -> None:
        super().__init__(dataset, batch_sampler=batch_sampler, **kwargs)
        object.__setattr__(self, "sampler", batch_sampler.sampler)  # DataLoader forbids setting it after __init__


class ImageDataModule(L.LightningDataModule):
    """Base of every source: builds the dataset of a split and serves shuffled, full batches for training.

    Args:
        batch_size: images per batch and process.
        num_workers: DataLoader worker processes.
        image_size: side the images are resized to.
    """

    image_channels: int = 3
    classes: tuple[str, ...] = ()

    def __init__(self, batch_size: int = 64, num_workers: int = 0, image_size: int = 32) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.image_size = image_size
        self.datasets: dict[str, Dataset] = {}

    def build_dataset(self, split: str) -> Dataset:
        raise NotImplementedError

    def dataset(self, split: str = "train") -> Dataset:
        """The dataset of ``split`` (``"train"`` or ``"test"``), built once."""
        if split not in self.datasets:
            self.datasets[split] = self.build_dataset(split)
        return self.datasets[split]

    def setup(self, stage: str | None = None) -> None:
        self.dataset("train")

    def train_dataloader(self) -> DataLoader:
        dataset = self.dataset("train")
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        sampler = ResumableSampler(dataset, num_replicas=world, rank=rank)
        gan = trainer.lightning_module if trainer is not None else None
        if gan is not None and getattr(gan, "data_schedule", lambda images: None)(gan.images_seen) is not None:
            return self._scheduled_loader(dataset, sampler, gan)
        if trainer is not None and trainer.fit_loop.restarting:
            # Resuming mid-epoch: skip what this process consumed before the checkpoint. "processed", not
            # "completed": a checkpoint written in on_train_batch_end has not yet counted that batch completed.
            done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
            sampler.skip = (done % (len(sampler) // self.batch_size)) * self.batch_size
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            drop_last=True,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            generator=sampler.loader_generator,
        )

    def _scheduled_loader(self, dataset: Dataset, sampler: ResumableSampler, gan: Any) -> DataLoader:
        """Batches whose size and image size follow ``gan.data_schedule`` (see :class:`ScheduledBatchSampler`)."""
        world = self.trainer.world_size
        batches = ScheduledBatchSampler(sampler, gan.data_schedule, self.batch_size, world, gan.images_seen)
        return _ScheduledLoader(
            AtSize(dataset),
            batch_sampler=batches,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            generator=sampler.loader_generator,
        )


class _IdxDataModule(ImageDataModule):
    """MNIST-format data: four gzipped IDX files in one folder."""

    image_channels = 1
    files: ClassVar[dict[str, str]] = {"train": "train", "test": "t10k"}

    def __init__(
        self,
        root: str | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        image_size: int = 32,
    ) -> None:
        super().__init__(batch_size, num_workers, image_size)
        self.root = root

    def raw_folder(self) -> Path:
        raise NotImplementedError

    def build_dataset(self, split: str) -> TensorImageDataset:
        folder = self.raw_folder()
        prefix = self.files[split]
        paths = [folder / f"{prefix}-images-idx3-ubyte.gz", folder / f"{prefix}-labels-idx1-ubyte.gz"]
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            raise DataNotFoundError(f"{type(self).__name__}: {', '.join(missing)} not found in {folder}")
        images, labels = (read_idx(p) for p in paths)
        images = resize_uint8(images.unsqueeze(1), self.image_size)
        return TensorImageDataset(images, labels, self.classes)


class MNIST(_IdxDataModule):
    """MNIST (LeCun et al. 1998): 60,000 train and 10,000 test digits, grayscale, 28x28 resized to ``image_size``."""

    classes = MNIST_CLASSES

    def raw_folder(self) -> Path:
        return data_root(self.root) / "MNIST" / "raw"


class FashionMNIST(_IdxDataModule):
    """Fashion-MNIST (Xiao et al. 2017): 60,000 + 10,000 grayscale Zalando articles in ten classes.

    Looked for in ``$GANZOO_DATA/FashionMNIST/raw``, then where Debian's ``dataset-fashion-mnist`` package
    puts it (``/usr/share/datasets/fashion-mnist``).
    """

    classes = FASHION_MNIST_CLASSES
    debian_folder = Path("/usr/share/datasets/fashion-mnist")

    def raw_folder(self) -> Path:
        try:
            folder = data_root(self.root) / "FashionMNIST" / "raw"
            if folder.is_dir():
                return folder
        except DataNotFoundError:
            if not self.debian_folder.is_dir():
                raise
        if self.debian_folder.is_dir():
            return self.debian_folder
        raise DataNotFoundError(
            f"Fashion-MNIST not found: put its four gzipped IDX files in $GANZOO_DATA/FashionMNIST/raw or "
            f"install Debian's package (apt-get install dataset-fashion-mnist -> {self.debian_folder})"
        )


def extract_once(archive: Path, name: str) -> Path:
    """Extract ``archive`` into ``cache_dir()/name`` the first time; atomic, so an interrupted run leaves no half."""
    target = cache_dir() / name
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        tmp.rename(target)
    except OSError:
        if not target.is_dir():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _folder_classes(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def load_image_folder(
    folder: Path, image_size: int, channels: int, labels: bool
) -> tuple[Tensor, Tensor, tuple[str, ...]]:
    """Decode every image under ``folder`` to uint8 ``[N, channels, image_size, image_size]``.

    With ``labels``, each subfolder is a class (sorted names, as torchvision's ImageFolder); else all
    images are unlabelled (``-1``). Non-square images are centre-cropped before resizing.
    """
    classes = _folder_classes(folder) if labels else []
    groups = [(i, folder / c) for i, c in enumerate(classes)] if labels else [(-1, folder)]
    mode = "L" if channels == 1 else "RGB"
    images, targets = [], []
    for label, sub in groups:
        for path in sorted(p for p in sub.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS):
            im = open_image(path, mode)
            side = min(im.size)
            left, top = (im.width - side) // 2, (im.height - side) // 2
            im = im.crop((left, top, left + side, top + side))
            if side != image_size:
                im = im.resize((image_size, image_size), Image.Resampling.BICUBIC)
            t = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
            images.append(t.view(image_size, image_size, channels).permute(2, 0, 1))
            targets.append(label)
    if not images:
        raise DataNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {folder}")
    return torch.stack(images), torch.tensor(targets), tuple(classes)


class CIFAR10(ImageDataModule):
    """CIFAR-10 (Krizhevsky 2009): 50,000 train and 10,000 test 32x32 colour images in ten classes.

    Reads ``$GANZOO_DATA/cifar10/cifar10-jpeg.tar`` (JPEG quality 75), extracted once to the cache.
    """

    classes = CIFAR10_CLASSES

    def __init__(self, root: str | None = None, batch_size: int = 64, num_workers: int = 0, image_size: int = 32):
        super().__init__(batch_size, num_workers, image_size)
        self.root = root

    def build_dataset(self, split: str) -> TensorImageDataset:
        archive = data_root(self.root) / "cifar10" / "cifar10-jpeg.tar"
        if not archive.is_file():
            raise DataNotFoundError(f"CIFAR-10: {archive} not found (train/<class>/*.jpg, test/<class>/*.jpg)")
        folder = extract_once(archive, "cifar10-jpeg") / split
        images, labels, classes = load_image_folder(folder, self.image_size, 3, labels=True)
        if classes != self.classes:
            raise ValueError(f"CIFAR-10 classes in {folder} are {classes}, expected {self.classes}")
        return TensorImageDataset(images, labels, classes)


class ImageFolder(ImageDataModule):
    """Any folder of images: ``root/<class>/*.png`` with ``labels=True``, or images anywhere below ``root``.

    Args:
        root: the folder (``train``/``test`` subfolders are used as splits when present).
        labels: take class labels from the first level of subfolders.
        image_channels: 1 (converted to grayscale) or 3 (RGB).
    """

    def __init__(
        self,
        root: str,
        labels: bool = False,
        image_channels: int = 3,
        batch_size: int = 64,
        num_workers: int = 0,
        image_size: int = 64,
    ) -> None:
        super().__init__(batch_size, num_workers, image_size)
        if image_channels not in (1, 3):
            raise ValueError(f"image_channels must be 1 or 3, got {image_channels}")
        self.root, self.labels, self.image_channels = Path(root).expanduser(), labels, image_channels

    def build_dataset(self, split: str) -> TensorImageDataset:
        if not self.root.is_dir():
            raise DataNotFoundError(f"image folder {str(self.root)!r} does not exist")
        folder = self.root / split if (self.root / split).is_dir() else self.root
        images, labels, classes = load_image_folder(folder, self.image_size, self.image_channels, self.labels)
        self.classes = classes
        return TensorImageDataset(images, labels, classes)


class PairedImageDataset(Dataset):
    """In-memory uint8 image pairs ``A [N, C, H, W]``, ``B [N, C', H, W]``, served as ``(a, b)`` floats in [-1, 1]."""

    def __init__(self, a: Tensor, b: Tensor) -> None:
        if a.dtype != torch.uint8 or b.dtype != torch.uint8 or len(a) != len(b):
            raise ValueError(f"expected as many uint8 A and B images, got {a.dtype} {len(a)} and {b.dtype} {len(b)}")
        self.a, self.b = a, b

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return to_unit_range(self.a[index]), to_unit_range(self.b[index])


class SeededTransforms(Dataset):
    """A file-backed dataset whose per-sample random transforms (crops, flips, an unpaired B draw) are drawn from a
    generator seeded by ``(seed, epoch, index)``: the same sample of the same epoch is transformed the same way in
    any worker, and after an exact resume. Indexed by ``(epoch, index)`` (what :class:`ResumableSampler` yields for
    it) or by ``index`` alone (epoch 0)."""

    seed: int = 0

    def rng(self, key: int | tuple[int, int]) -> tuple[int, torch.Generator]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        return index, torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) * 10_000_019 + index)


def open_image(path: Path, mode: str | None = "RGB") -> Image.Image:
    """The image in ``path``, decoded and converted to ``mode`` (``None``: as the file holds it); a ``ValueError``
    that names the file when it is truncated or not an image (PIL raises OSErrors for both)."""
    try:
        with Image.open(path) as im:
            return im.convert(mode) if mode else im.copy()
    except OSError as e:
        raise ValueError(f"{path} cannot be read as an image ({e}): replace or remove it") from None


def read_image(path: Path, channels: int = 3) -> Tensor:
    """A uint8 ``[C, H, W]`` image from a file; an error naming the file if it cannot be read."""
    im = open_image(path, "L" if channels == 1 else "RGB")
    return (
        torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
        .view(im.height, im.width, channels)
        .permute(2, 0, 1)
    )


def jitter(images: Sequence[Tensor], load_size: int, crop_size: int, flip: bool, g: torch.Generator) -> list[Tensor]:
    """pix2pix's jitter, applied identically to every image of a pair: resize to ``load_size`` (bicubic), a random
    ``crop_size`` crop, a random horizontal flip. uint8 in, float in [-1, 1] out."""
    out = [F.interpolate(x[None].float(), size=(load_size, load_size), mode="bicubic", align_corners=False)[0]
           if x.shape[-2:] != (load_size, load_size) else x.float() for x in images]  # fmt: skip
    top, left = (int(torch.randint(load_size - crop_size + 1, (1,), generator=g)) for _ in range(2))
    out = [x[:, top : top + crop_size, left : left + crop_size] for x in out]
    if flip and torch.rand((), generator=g) < 0.5:
        out = [x.flip(-1) for x in out]
    return [x.clamp(0, 255).div_(127.5).sub_(1.0) for x in out]


class PairedFolder(SeededTransforms):
    """Pairs from files: pix2pix's "AB" format (one image, A left and B right) or two folders of equally named files.

    Items are ``(A, B)`` floats in [-1, 1] after :func:`jitter` (training) or resized to ``crop_size`` (other splits),
    swapped for ``direction="b2a"``.
    """

    def __init__(
        self,
        files: Sequence[Path | tuple[Path, Path]],
        load_size: int,
        crop_size: int,
        flip: bool,
        train: bool,
        direction: str = "a2b",
        channels: int = 3,
        seed: int = 0,
    ) -> None:
        if direction not in ("a2b", "b2a"):
            raise ValueError(f"direction must be 'a2b' or 'b2a', got {direction!r}")
        if load_size < crop_size:
            raise ValueError(f"load_size {load_size} is smaller than crop_size {crop_size}")
        self.files, self.load_size, self.crop_size = list(files), load_size, crop_size
        self.flip, self.train, self.direction, self.channels, self.seed = flip, train, direction, channels, seed

    def __len__(self) -> int:
        return len(self.files)

    def pair(self, index: int) -> tuple[Tensor, Tensor]:
        """The uint8 pair ``(A, B)`` of file ``index``, before any transform."""
        f = self.files[index]
        if isinstance(f, tuple):
            return read_image(f[0], self.channels), read_image(f[1], self.channels)
        ab = read_image(f, self.channels)
        half = ab.shape[-1] // 2
        return ab[..., :half], ab[..., half : 2 * half]

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[Tensor, Tensor]:
        index, g = self.rng(key)
        a, b = self.pair(index)
        if self.train:
            a, b = jitter([a, b], self.load_size, self.crop_size, self.flip, g)
        else:
            a, b = jitter([a, b], self.crop_size, self.crop_size, False, g)
        return (b, a) if self.direction == "b2a" else (a, b)


class Paired(ImageDataModule):
    """Paired translation data from files, by default pix2pix's maps (``$GANZOO_DATA/maps``: ``train/``, ``val/``
    of 512x256 "AB" images, aerial photo | map).

    ``root`` holds a folder per split (``train``, ``val``, ``test``), each either of AB images, or with ``A/`` and
    ``B/`` subfolders of equally named files. Training items get pix2pix's jitter (resize to ``load_size``, random
    ``crop_size`` crop, random flip, the same for both halves), seeded by (epoch, index) so that a resumed run
    draws the same crops; other splits are resized to ``crop_size``.

    Args:
        root: the data folder (default ``$GANZOO_DATA/maps``).
        direction: ``"a2b"`` (photo to map for maps) or ``"b2a"``.
        load_size, crop_size: the jitter's sizes (the paper's 286 and 256).
        flip: random horizontal flips in training.
        channels: 3 (RGB) or 1.
    """

    def __init__(
        self,
        root: str | None = None,
        direction: str = "a2b",
        load_size: int = 286,
        crop_size: int = 256,
        flip: bool = True,
        channels: int = 3,
        batch_size: int = 1,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers, crop_size)
        self.root, self.direction, self.load_size, self.crop_size = root, direction, load_size, crop_size
        self.flip, self.image_channels, self.seed = flip, channels, seed

    def folder_root(self) -> Path:
        return Path(self.root).expanduser() if self.root else data_root() / "maps"

    def build_dataset(self, split: str) -> PairedFolder:
        root = self.folder_root()
        folder = root / ("val" if split == "test" and not (root / "test").is_dir() else split)  # maps has no test
        if not folder.is_dir():
            raise DataNotFoundError(f"no {split} folder in {root} (expected {folder}/ of AB images, or A/ and B/)")
        if (folder / "A").is_dir() and (folder / "B").is_dir():
            names = sorted(p.name for p in (folder / "A").iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
            missing = [n for n in names if not (folder / "B" / n).is_file()]
            if missing:
                raise DataNotFoundError(f"{folder / 'B'} lacks the partners of {missing[:5]} in {folder / 'A'}")
            files: list[Any] = [(folder / "A" / n, folder / "B" / n) for n in names]
        else:
            files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS), key=_natural)
        if not files:
            raise DataNotFoundError(f"no images in {folder}")
        return PairedFolder(files, self.load_size, self.crop_size, self.flip, split == "train", self.direction,
                            self.image_channels, self.seed)  # fmt: skip


class UnpairedFolder(SeededTransforms):
    """Unpaired items ``(A, B)``: the A of item ``index`` with a B drawn at random (seeded by epoch and index, so a
    resumed run draws the same), each jittered on its own. ``a`` and ``b`` list ``(file, half)``: ``half`` is
    ``"left"``/``"right"`` for a half of an AB image, ``None`` for a whole file."""

    def __init__(
        self,
        a: Sequence[tuple[Path, str | None]],
        b: Sequence[tuple[Path, str | None]],
        load_size: int,
        crop_size: int,
        flip: bool,
        train: bool,
        channels: int = 3,
        seed: int = 0,
    ) -> None:
        if load_size < crop_size:
            raise ValueError(f"load_size {load_size} is smaller than crop_size {crop_size}")
        self.a, self.b, self.load_size, self.crop_size = list(a), list(b), load_size, crop_size
        self.flip, self.train, self.channels, self.seed = flip, train, channels, seed

    def __len__(self) -> int:
        return len(self.a)

    def read(self, item: tuple[Path, str | None]) -> Tensor:
        path, half = item
        x = read_image(path, self.channels)
        w = x.shape[-1] // 2
        return x if half is None else x[..., :w] if half == "left" else x[..., w : 2 * w]

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[Tensor, Tensor]:
        index, g = self.rng(key)
        j = int(torch.randint(len(self.b), (), generator=g)) if self.train else index % len(self.b)
        a, b = self.read(self.a[index]), self.read(self.b[j])
        load, flip = (self.load_size, self.flip) if self.train else (self.crop_size, False)
        return jitter([a], load, self.crop_size, flip, g)[0], jitter([b], load, self.crop_size, flip, g)[0]


class Unpaired(Paired):
    """Unpaired translation data (CycleGAN): ``<split>A/`` and ``<split>B/`` folders (junyanz' layout, e.g.
    ``trainA``, ``trainB``), or the A and B halves of a paired set's AB images drawn independently (by default the
    maps set: aerial photos and maps that do not belong together). Training items pair each A with a random B;
    both get the jitter, each its own. The arguments are :class:`Paired`'s."""

    def build_dataset(self, split: str) -> UnpairedFolder:
        root = self.folder_root()
        if (root / f"{split}A").is_dir() or (split == "test" and (root / "valA").is_dir()):
            name = split if (root / f"{split}A").is_dir() else "val"
            a, b = ([(p, None) for p in _images(root / f"{name}{d}")] for d in "AB")
        else:
            paired = super().build_dataset(split)
            if any(isinstance(f, tuple) for f in paired.files):
                a, b = [(f[0], None) for f in paired.files], [(f[1], None) for f in paired.files]
            else:
                a, b = [(f, "left") for f in paired.files], [(f, "right") for f in paired.files]
        if not a or not b:
            raise DataNotFoundError(f"no A or no B images for split {split!r} in {root}")
        if self.direction == "b2a":
            a, b = b, a
        return UnpairedFolder(a, b, self.load_size, self.crop_size, self.flip, split == "train", self.image_channels,
                              self.seed)  # fmt: skip


def _images(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS), key=_natural)


def _natural(path: Path) -> tuple:
    """Sort key: ``2.jpg`` before ``10.jpg``."""
    stem = path.stem
    return (0, int(stem), "") if stem.isdigit() else (1, 0, stem)


class Synthetic(ImageDataModule):
    """Generated data for tests, no files: each class is a filled disc around its own place on a circle.

    Deterministic for a ``seed``; easy enough that a GAN's losses move within a few steps. With ``paired`` the items
    are translation pairs ``(A, B)``: the discs, and their negatives with the colour channels rotated; with
    ``scale > 1`` as well, super-resolution pairs ``(LR, HR)``: the discs shrunk by :func:`bicubic_resize`, and the
    discs.
    """

    def __init__(
        self,
        num_images: int = 256,
        num_classes: int = 4,
        image_channels: int = 1,
        image_size: int = 16,
        batch_size: int = 16,
        num_workers: int = 0,
        seed: int = 0,
        paired: bool = False,
        scale: int = 1,
    ) -> None:
        super().__init__(batch_size, num_workers, image_size)
        self.scale = scale
        self.num_images, self.num_classes, self.seed = num_images, num_classes, seed
        self.image_channels, self.paired = image_channels, paired
        self.classes = () if paired else tuple(f"disc{i}" for i in range(num_classes))

    @classmethod
    def matching(cls, gan: Any, num_images: int = 32, batch_size: int = 8, **kwargs: Any) -> Synthetic:
        """Synthetic data that ``gan`` trains on: its size and channels, its classes, pairs for a translator."""
        hp = gan.hparams
        channels = hp.get("image_channels") or hp.get("input_channels") or hp.get("a_channels") or 3
        paired, scale = gan.task in IMAGE_TASKS, getattr(gan, "output_scale", 1)
        return cls(num_images=num_images, num_classes=hp.get("num_classes") or 4, image_channels=channels,
                   image_size=hp["image_size"], batch_size=batch_size, paired=paired, scale=scale,
                   **kwargs)  # fmt: skip

    def build_dataset(self, split: str) -> Dataset:
        discs = self._discs(split)
        if self.paired and self.scale > 1:  # super-resolution: (bicubic LR, HR)
            return PairedImageDataset(bicubic_resize(discs.images, 1 / self.scale), discs.images)
        if self.paired:
            return PairedImageDataset(discs.images, (255 - discs.images).roll(1, dims=1))
        return discs

    def _discs(self, split: str) -> TensorImageDataset:
        g = torch.Generator().manual_seed(self.seed + (split != "train"))
        labels = torch.randint(self.num_classes, (self.num_images,), generator=g)
        s = self.image_size
        yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
        angle = 2 * torch.pi * labels.float() / self.num_classes
        cy = s / 2 + s / 4 * torch.sin(angle) + torch.randn(self.num_images, generator=g)
        cx = s / 2 + s / 4 * torch.cos(angle) + torch.randn(self.num_images, generator=g)
        radius = s / 6 * (1 + 0.2 * torch.rand(self.num_images, generator=g))
        inside = (yy - cy[:, None, None]) ** 2 + (xx - cx[:, None, None]) ** 2 <= radius[:, None, None] ** 2
        shade = torch.linspace(0.4, 1.0, self.image_channels)
        shade = shade.roll(1) if self.image_channels > 1 else shade
        images = inside[:, None].float() * shade[None, :, None, None] * 255
        return TensorImageDataset(images.round().to(torch.uint8), labels, self.classes)


# Super-resolution ------------------------------------------------------------------------------------------------


def _cubic(x: Tensor) -> Tensor:
    """Keys' cubic convolution kernel with ``a = -0.5`` (MATLAB's ``imresize`` bicubic)."""
    ax = x.abs()
    ax2, ax3 = ax**2, ax**3
    near = 1.5 * ax3 - 2.5 * ax2 + 1
    far = -0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2
    return torch.where(ax <= 1, near, torch.where(ax <= 2, far, torch.zeros_like(ax)))


def _bicubic_weights(in_size: int, out_size: int, scale: float) -> Tensor:
    """The ``[out_size, in_size]`` matrix of MATLAB's bicubic ``imresize`` along one axis: output pixel ``i`` (1-based)
    sits at input coordinate ``u = i / scale + (1 - 1 / scale) / 2``; when shrinking, the kernel is stretched by
    ``1 / scale`` (antialiasing), ``h(x) = scale * cubic(scale * x)``; taps outside the image are mirrored
    (``symmetric`` padding), and each row is normalised to sum to 1."""
    shrink = scale < 1
    width = 4.0 / scale if shrink else 4.0
    u = torch.arange(1, out_size + 1, dtype=torch.float64) / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - width / 2)
    taps = left[:, None] + torch.arange(math.ceil(width) + 2, dtype=torch.float64)[None]
    distance = u[:, None] - taps
    weights = scale * _cubic(scale * distance) if shrink else _cubic(distance)
    weights = weights / weights.sum(1, keepdim=True)
    mirrored = torch.cat([torch.arange(in_size), torch.arange(in_size - 1, -1, -1)])
    index = mirrored[(taps.long() - 1) % (2 * in_size)]
    matrix = torch.zeros(out_size, in_size, dtype=torch.float64)
    return matrix.scatter_add_(1, index, weights)


def bicubic_resize(images: Tensor, scale: float) -> Tensor:
    """Resize ``[..., C, H, W]`` images by ``scale`` as MATLAB's ``imresize(x, scale, 'bicubic')`` does: the
    kernel with ``a = -0.5``, antialiased when shrinking, mirrored borders, in float64, height first then width.
    A uint8 image is rounded to uint8 after each of the two passes, as MATLAB does for uint8 (the
    ``LR_bicubic_x4`` images of the SR benchmarks are made this way); a float one is returned unrounded in its
    dtype. Output sides are ``ceil(scale * side)``."""
    h, w = images.shape[-2:]
    out_h, out_w = math.ceil(h * scale - 1e-9), math.ceil(w * scale - 1e-9)
    rounded = images.dtype == torch.uint8
    x = torch.einsum("oh,...hw->...ow", _bicubic_weights(h, out_h, scale), images.double())
    x = x.round_().clamp_(0, 255) if rounded else x
    x = torch.einsum("pw,...hw->...hp", _bicubic_weights(w, out_w, scale), x)
    return x.round_().clamp_(0, 255).to(torch.uint8) if rounded else x.to(images.dtype)


def dihedral(x: Tensor, k: int) -> Tensor:
    """The ``k``-th (0..7) of the square's eight symmetries applied to ``[..., H, W]``: ``k % 4`` quarter turns,
    then a horizontal flip when ``k >= 4``."""
    x = torch.rot90(x, k % 4, dims=(-2, -1))
    return x.flip(-1) if k >= 4 else x


class SRFolder(SeededTransforms):
    """Super-resolution items ``(LR, HR)`` in [-1, 1].

    Training: a random ``crop_size`` crop of an HR image, one of the eight flips and quarter turns (seeded by epoch
    and index), and its LR made by :func:`bicubic_resize` to ``1 / scale`` and rounded to uint8, as the benchmark
    LR images are. Evaluation: the whole HR image cropped to a multiple of ``scale``, and its LR read from
    ``lr_files`` where given (the benchmark's own), else made the same way.

    ``hr_files`` lists ``(file, half)``: ``half`` ``"left"``/``"right"`` for a half of an AB image (the maps set's
    aerial photos), ``None`` for a whole file.
    """

    def __init__(
        self,
        hr_files: Sequence[tuple[Path, str | None]],
        scale: int,
        crop_size: int | None,
        train: bool,
        lr_files: Sequence[Path] | None = None,
        seed: int = 0,
    ) -> None:
        if crop_size is not None and crop_size % scale:
            raise ValueError(f"crop_size {crop_size} is not a multiple of scale {scale}")
        self.hr_files, self.lr_files = list(hr_files), list(lr_files) if lr_files else None
        self.scale, self.crop_size, self.train, self.seed = scale, crop_size, train, seed

    def __len__(self) -> int:
        return len(self.hr_files)

    def hr(self, index: int) -> Tensor:
        path, half = self.hr_files[index]
        x = read_image(path)
        w = x.shape[-1] // 2
        x = x if half is None else x[..., :w] if half == "left" else x[..., w : 2 * w]
        h, w = x.shape[-2:]
        return x[..., : h - h % self.scale, : w - w % self.scale]

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[Tensor, Tensor]:
        index, g = self.rng(key)
        hr = self.hr(index)
        if self.train:
            s, (h, w) = self.crop_size, hr.shape[-2:]
            if h < s or w < s:
                raise ValueError(f"{self.hr_files[index][0]} is {w}x{h}: smaller than crop_size {s}")
            top, left = int(torch.randint(h - s + 1, (), generator=g)), int(torch.randint(w - s + 1, (), generator=g))
            hr = dihedral(hr[:, top : top + s, left : left + s], int(torch.randint(8, (), generator=g)))
            lr = bicubic_resize(hr, 1 / self.scale)
        elif self.lr_files is not None:
            lr = read_image(self.lr_files[index])
            if tuple(lr.shape[-2:]) != (hr.shape[-2] // self.scale, hr.shape[-1] // self.scale):
                raise ValueError(f"{self.lr_files[index]} is not {self.hr_files[index][0]} shrunk {self.scale}x")
        else:
            lr = bicubic_resize(hr, 1 / self.scale)
        return to_unit_range(lr), to_unit_range(hr)


SR_BENCHMARKS = ("Set5", "Set14", "BSD100")


class SuperResolution(ImageDataModule):
    """Super-resolution data: ``(LR, HR)`` pairs, HR crops for training, the SR benchmarks for evaluation.

    Training images come from ``train`` folders under the data root: ``"<folder>"`` for a folder of HR images,
    ``"<folder>:left"`` for the left halves of AB images (the maps set's aerial photos). The test split is
    ``$GANZOO_DATA/sr/<benchmark>/HR`` with its MATLAB-bicubic ``LR_bicubic_x<scale>`` inputs (Set5, Set14,
    BSD100); ``val`` is the same. Batches of the test split hold one image (their sizes differ).

    Args:
        train: the training folders (default: BSD100's 100 HR images, so Set5 and Set14 stay unseen and scores on
            BSD100 are marked as seen in training; ``"maps/train:left"`` adds the maps set's 1,096 aerial photos).
        benchmark: the evaluation set.
        scale: the upscaling factor.
        crop_size: the HR training crop (the paper's 96).
    """

    def __init__(
        self,
        train: Sequence[str] = ("sr/BSD100/HR",),
        benchmark: str = "Set5",
        scale: int = 4,
        crop_size: int = 96,
        root: str | None = None,
        batch_size: int = 16,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers, crop_size)
        self.train, self.benchmark, self.scale, self.crop_size = list(train), benchmark, scale, crop_size
        self.root, self.seed = root, seed

    def build_dataset(self, split: str) -> SRFolder:
        root = data_root(self.root)
        if split == "train":
            files: list[tuple[Path, str | None]] = []
            for spec in self.train:
                folder, _, half = spec.partition(":")
                if half not in ("", "left", "right"):
                    raise ValueError(f"train folder {spec!r}: the part after ':' must be 'left' or 'right'")
                if not (root / folder).is_dir():
                    raise DataNotFoundError(f"no training folder {root / folder} (from train={spec!r})")
                files += [(p, half or None) for p in _images(root / folder)]
            if not files:
                raise DataNotFoundError(f"no images in the training folders {self.train} under {root}")
            return SRFolder(files, self.scale, self.crop_size, True, seed=self.seed)
        folder = root / "sr" / self.benchmark
        if not (folder / "HR").is_dir():
            raise DataNotFoundError(f"no {folder / 'HR'}: the SR benchmarks live in $GANZOO_DATA/sr/<name>/HR "
                                    f"(and LR_bicubic_x<scale>)")  # fmt: skip
        hr = _images(folder / "HR")
        lr_folder = folder / f"LR_bicubic_x{self.scale}"
        lr = [lr_folder / p.name for p in hr] if lr_folder.is_dir() else None
        if lr is not None and not all(p.is_file() for p in lr):
            raise DataNotFoundError(f"{lr_folder} lacks some of the LR partners of {folder / 'HR'}")
        return SRFolder([(p, None) for p in hr], self.scale, None, False, lr, seed=self.seed)
