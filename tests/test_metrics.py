"""Metrics: each checked against an independent computation (scipy, numpy, analytic values, a second resize)."""

import json
import math
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import linalg

from ganzoo import cli, hub, metrics
from ganzoo.data import extract_once
from ganzoo.gan import to_uint8


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
        pytest.skip(f"the Inception network is not installed and cannot be downloaded: {e}")


@pytest.fixture(scope="module")
def cifar_folders(tmp_path_factory):
    """200 CIFAR-10 train and 200 test images as files, 20 of each class."""
    import os
    from pathlib import Path

    root = os.environ.get("GANZOO_DATA")
    if not root or not (Path(root) / "cifar10" / "cifar10-jpeg.tar").is_file():
        pytest.skip("CIFAR-10 not available: set GANZOO_DATA")
    src = extract_once(Path(root) / "cifar10" / "cifar10-jpeg.tar", "cifar10-jpeg")
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


def test_kid_equals_the_unbiased_mmd_and_precision_recall_a_brute_force_count():
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

    def brute(ref: np.ndarray, queries: np.ndarray, k: int) -> float:
        d_ref = np.linalg.norm(ref[:, None] - ref[None], axis=-1)
        radii = np.sort(d_ref, axis=1)[:, k]  # column 0 is the point itself
        d = np.linalg.norm(queries[:, None] - ref[None], axis=-1)
        return float((d <= radii[None]).any(axis=1).mean())

    p, r = metrics.precision_recall(real, fake, k=3, chunk=50)
    assert p == pytest.approx(brute(real.numpy(), fake.numpy(), 3))
    assert r == pytest.approx(brute(fake.numpy(), real.numpy(), 3))
    assert 0 < p < 1 and 0 < r < 1
    assert metrics.precision_recall(real, real) == (1.0, 1.0)
    assert metrics.precision_recall(real, real + 100) == (0.0, 0.0)


def test_inception_score_of_confident_balanced_predictions_is_the_number_of_classes():
    probs = torch.full((40, 4), 1e-6, dtype=torch.float64)
    probs[torch.arange(40), torch.arange(40) % 4] = 1 - 3e-6
    mean, _ = metrics.inception_score(probs, splits=1)
    assert mean == pytest.approx(4.0, rel=1e-3)
    uniform = torch.full((40, 4), 0.25, dtype=torch.float64)
    assert metrics.inception_score(uniform, splits=1)[0] == pytest.approx(1.0)


def test_inception_features_of_a_set_against_itself_give_zero_fid(inception, cifar_folders):
    images = metrics.ImageSet.from_folder(cifar_folders[1])
    features, _ = metrics.extract(inception, images.batches())
    assert features.shape == (200, 2048) and torch.isfinite(features).all()
    assert abs(metrics.frechet_distance(features, features)) < 1e-2


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
    """The call signature of NVIDIA's Inception TorchScript, on a tiny network: [0, 255] input, features or
    class probabilities."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 5)

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


def test_nvidia_inception_file_gives_features_and_an_inception_score(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "inception-2015-12-05.pt"
    torch.jit.save(torch.jit.script(NvidiaStyleInception()), str(path))
    net = metrics.InceptionV3(path)
    assert net.has_classifier
    images = torch.randint(0, 256, (30, 3, 8, 8), dtype=torch.uint8)
    features = net(images)
    assert features.shape == (30, 3)
    # The 299x299 input it was given is the TF1 resize of the uint8 images, unscaled ([0, 255]).
    torch.testing.assert_close(features, metrics.tf1_resize(images.float(), 299).mean(dim=(2, 3)) / 128 - 1)
    result = metrics.evaluate(fake=images, real=images.flip(0), metrics=["is", "fid"], feature_net=net, progress=False)
    assert 1 <= result["metrics"]["is"]["mean"] <= 5
    assert abs(result["metrics"]["fid"]["mean"]) < 1e-6  # the same images in another order


def test_dinov2_random_init_features_and_fd():
    net = metrics.DINOv2("vit_small_patch14_dinov2.lvd142m", pretrained=False)
    assert net.name == "dinov2:vit_small_patch14_dinov2.lvd142m" and net.sha256.startswith("random-init:")
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (6, 1, 32, 32), dtype=torch.uint8, generator=g)
    features, _ = metrics.extract(net, images.split(3))
    assert features.shape == (6, 384) and torch.isfinite(features).all()
    result = metrics.evaluate(fake=images, real=images, metrics=["fid", "kid"], feature_net=net, progress=False)
    assert set(result["metrics"]) == {"fd_dinov2", "kd_dinov2"}
    assert abs(result["metrics"]["fd_dinov2"]["mean"]) < 1e-3


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
    assert (m["ssim"] < 1).all()

    white, black = torch.ones(1, 3, 1, 1, dtype=torch.float64), torch.zeros(1, 3, 1, 1, dtype=torch.float64)
    assert metrics.rgb_to_y(white).item() == pytest.approx(235.0) and metrics.rgb_to_y(black).item() == 16.0

    # A difference only within the shaved border does not count.
    border = target.clone()
    border[..., :4, :] = 0
    shaved = metrics.paired_metrics(as_float(border), as_float(target), y_channel=True, crop=4)
    assert torch.isinf(shaved["psnr"]).all()
    with pytest.raises(ValueError, match="shave"):
        metrics.paired_metrics(as_float(target), as_float(target), crop=12)


@pytest.mark.data
def test_bicubic_upscaling_on_set5_is_near_the_srgan_papers_bicubic_row(data_root):
    """SRGAN Table 2 (Y channel, 4-pixel crop): bicubic x4 on Set5 gives 28.43 dB. PyTorch's bicubic (a = -0.75)
    is not MATLAB's (a = -0.5), so a few tenths of a dB apart is expected."""
    from PIL import Image

    def load(path):
        return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)[None]

    folder = data_root / "sr" / "Set5"
    psnr = []
    for hr_path in sorted((folder / "HR").glob("*.png")):
        hr, lr = load(hr_path), load(folder / "LR_bicubic_x4" / hr_path.name)
        up = F.interpolate(lr.double() / 127.5 - 1, scale_factor=4, mode="bicubic", align_corners=False)
        psnr.append(metrics.paired_metrics(up.clamp(-1, 1), hr.double() / 127.5 - 1, y_channel=True, crop=4)["psnr"])
    mean = torch.cat(psnr).mean().item()
    assert len(psnr) == 5 and abs(mean - 28.43) < 0.5, mean


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
