"""The class-conditional GAN: labels in and out of sample(), class names from the data to the config and
`ganzoo info`, clear errors for bad labels, the projection discriminator, and class conditioning that is learnt."""

import json
import subprocess
import sys

import lightning as L
import pytest
import torch
from PIL import Image

import ganzoo
from ganzoo import hub
from ganzoo.data import Synthetic

TINY = dict(latent_dim=8, num_classes=4, image_size=8, image_channels=1, base_channels=4)


def make(**overrides) -> ganzoo.gan.GAN:
    L.seed_everything(0, verbose=False)
    return ganzoo.create("cgan", **{**TINY, **overrides})


def distinct_classes(gan) -> ganzoo.gan.GAN:
    """Give every class its own conditional-batch-norm scale and shift (at init they are all 1 and 0)."""
    with torch.no_grad():
        for norm in gan.generator.norms:
            norm.gamma.weight.normal_(1.0, 0.5)
            norm.beta.weight.normal_(0.0, 0.5)
    gan.init_ema(None)
    return gan


def fit(gan, datamodule, batches: int, **kwargs) -> L.Trainer:
    kwargs = {"max_epochs": 100, **kwargs}
    trainer = L.Trainer(accelerator="cpu", limit_train_batches=batches, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, **kwargs)  # fmt: skip
    trainer.fit(gan, datamodule)
    return trainer


def test_labels_choose_the_class_and_sample_spreads_over_classes():
    gan = distinct_classes(make())
    z = gan.sample_latents(10, seed=0)
    assert z.shape == (10, 8 + 4)
    assert torch.equal(z[:, 8:].argmax(1), torch.arange(10) % 4)  # sample(n) cycles 0, 1, 2, 3, 0, ...
    torch.testing.assert_close(gan.sample(10, seed=0), gan.sample(10, seed=0, labels=torch.arange(10) % 4))
    threes = gan.sample(4, seed=0, labels=3)
    assert torch.equal(threes, gan.sample(4, seed=0, labels=[3, 3, 3, 3]))
    assert torch.equal(threes, gan.sample(4, seed=0, labels=torch.tensor([3, 3, 3, 3])))
    assert not torch.allclose(threes, gan.sample(4, seed=0, labels=1))  # same z, another class
    assert torch.equal(gan.sample(2, seed=5, labels=["2", "0"]), gan.sample(2, seed=5, labels=[2, 0]))


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([0, 4, 1], r"class ids \[4\] out of range: this CGAN has 4 classes, ids 0 to 3"),
        ([-1, 0, 1], r"class ids \[-1\] out of range"),
        ([0, 1], r"labels of shape \[2\] for 3 images; expected 3 class ids in \[0, 4\)"),
        ([1], r"labels of shape \[1\] for 3 images"),
        (torch.zeros(3, 4), r"look one-hot; give class ids .*labels.argmax\(1\)"),
        (torch.zeros(3, 2, dtype=torch.long), r"labels of shape \[3, 2\] for 3 images"),
        (torch.tensor([0.0, 1.0, 2.0]), r"labels must be integer class ids, got a torch.float32 tensor"),
        (["cat", "0", "1"], r"unknown class names \['cat'\]: this CGAN's classes are \['0', '1', '2', '3'\]"),
    ],
)
def test_bad_labels_are_refused_with_a_clear_message(labels, message):
    with pytest.raises(ValueError, match=message):
        make().sample(3, labels=labels)


def test_an_unconditional_model_takes_no_labels():
    gan = ganzoo.create("dcgan", **ganzoo.registry.get_variant("dcgan").tiny)
    with pytest.raises(ValueError, match="DCGAN is unconditional: it takes no labels"):
        gan.sample(2, labels=[0, 1])


def test_projection_discriminator_is_affine_in_the_class():
    """D(x, c) = psi(phi(x)) + <V c, sum phi(x)>: the unconditional part plus a term linear in the one-hot c."""
    D = make().discriminator.eval()
    x = torch.randn(5, 1, 8, 8)
    eye = torch.eye(4)
    with torch.no_grad():
        unconditional = D(x, torch.zeros(5, 4))
        per_class = torch.stack([D(x, eye[k].expand(5, 4)) for k in range(4)], dim=1)  # [5, 4]
        mixed = D(x, torch.full((5, 4), 0.25))
        features = D.features(x).sum(dim=(2, 3))
    torch.testing.assert_close(mixed, per_class.mean(1))  # linear in c
    torch.testing.assert_close(per_class - unconditional[:, None], features @ D.embed.weight, rtol=1e-5, atol=1e-5)
    assert torch.equal(unconditional, D.psi(D.features(x)).flatten())


def test_class_names_come_from_the_data_and_travel_with_the_model(tmp_path):
    gan = make()
    fit(gan, Synthetic(num_images=32, image_size=8, batch_size=8, num_classes=4), batches=1)
    assert gan.class_names == ["disc0", "disc1", "disc2", "disc3"]
    folder = ganzoo.save_pretrained(gan, tmp_path / "model")
    assert json.loads((folder / "config.json").read_text())["hparams"]["class_names"] == gan.class_names
    loaded = ganzoo.load(folder)
    assert loaded.class_names == gan.class_names
    torch.testing.assert_close(loaded.sample(3, seed=0, labels=["disc2"] * 3), gan.sample(3, seed=0, labels=2))
    assert hub.info(str(folder))["classes"] == {0: "disc0", 1: "disc1", 2: "disc2", 3: "disc3"}


def test_data_with_another_number_of_classes_is_refused():
    with pytest.raises(ValueError, match="num_classes=4 but the data has 3 classes .*set num_classes=3"):
        fit(make(), Synthetic(num_images=24, image_size=8, batch_size=8, num_classes=3), batches=1)
    with pytest.raises(ValueError, match="3 class names for num_classes=4"):
        make(class_names=["a", "b", "c"])


def test_sample_cli_writes_one_row_per_requested_class(tmp_path):
    gan = distinct_classes(make(class_names=["a", "b", "c", "d"]))
    folder = ganzoo.save_pretrained(gan, tmp_path / "model")
    out = tmp_path / "grid.png"
    cmd = [sys.executable, "-m", "ganzoo.cli", "sample", str(folder), "--labels", "3,0,b", "-n", "5", "-o", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "3 rows of 5 samples" in done.stdout and "classes d, a, b" in done.stdout
    grid = torch.from_numpy(__import__("numpy").asarray(Image.open(out).convert("L"))).float()
    assert grid.shape == (2 + 3 * (8 + 2), 2 + 5 * (8 + 2))
    # Row r holds class labels[r] with the row's shared latents: exactly what sample() gives for them.
    z = gan.sample_latents(5, seed=0)
    for r, label in enumerate([3, 0, 1]):
        expected = ganzoo.gan.to_uint8(gan.generate_batches(gan.with_labels(z, label)).__next__()).float()
        for c in range(5):
            tile = grid[2 + r * 10 : 10 + r * 10, 2 + c * 10 : 10 + c * 10]
            assert torch.equal(tile, expected[c, 0]), (r, c)

    bad = subprocess.run([*cmd[:5], "--labels", "7", "-o", str(out)], capture_output=True, text=True)
    assert bad.returncode == 1 and "'7' is neither a class id in [0, 4) nor a class name (a, b, c, d)" in bad.stderr
    dcgan = ganzoo.save_pretrained(ganzoo.create("dcgan", **ganzoo.registry.get_variant("dcgan").tiny), tmp_path / "d")
    bad = subprocess.run([*cmd[:4], str(dcgan), "--labels", "1", "-o", str(out)], capture_output=True, text=True)
    assert bad.returncode == 1 and "is unconditional: leave out --labels" in bad.stderr


@pytest.mark.slow
def test_conditioning_is_learnt_on_a_tiny_problem():
    """Synthetic data puts each class's disc at its own place: after training, the samples asked for class k are
    closer to class k's mean image than to any other class's."""
    gan = make(image_size=16, latent_dim=16, base_channels=16, lr=1e-3)  # 640 steps
    dm = Synthetic(num_images=512, image_size=16, batch_size=32, num_classes=4)
    dm.setup()
    data = dm.dataset()
    images = torch.stack([data[i][0] for i in range(len(data))])
    labels = torch.stack([data[i][1] for i in range(len(data))])
    means = torch.stack([images[labels == k].mean(0) for k in range(4)])
    fit(gan, dm, batches=16, max_epochs=40)
    for k in range(4):
        mean = gan.sample(64, seed=k, labels=k).mean(0)
        distances = (means - mean).flatten(1).norm(dim=1)
        assert distances.argmin() == k, (k, distances.tolist())


def test_a_conditional_model_is_refused_unlabelled_data(tmp_path):
    from ganzoo.data import ImageFolder

    (tmp_path / "imgs").mkdir()
    for i in range(4):
        Image.new("L", (8, 8), color=i * 60).save(tmp_path / "imgs" / f"{i}.png")
    unlabelled = ImageFolder(tmp_path / "imgs", image_size=8, image_channels=1, batch_size=2)
    with pytest.raises(ValueError, match=r"class-conditional \(num_classes=4\) but the data has no classes"):
        fit(make(), unlabelled, batches=1)
