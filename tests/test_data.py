import gzip

import pytest
import torch

from ganzoo import data
from tests.conftest import need


def test_synthetic_is_deterministic_and_in_range():
    a, b = (
        data.Synthetic(num_images=20, image_channels=3, image_size=12),
        data.Synthetic(num_images=20, image_channels=3, image_size=12),
    )
    x, y = a.dataset()[3]
    assert x.shape == (3, 12, 12) and x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    assert torch.equal(x, b.dataset()[3][0]) and y == b.dataset()[3][1]
    batch, labels = next(iter(a.train_dataloader()))
    assert batch.shape == (16, 3, 12, 12) and labels.dtype == torch.int64


def test_missing_data_names_the_variable(monkeypatch):
    monkeypatch.delenv("GANZOO_DATA", raising=False)
    with pytest.raises(data.DataNotFoundError, match="GANZOO_DATA.*MNIST/raw"):
        data.MNIST().setup()
    with pytest.raises(data.DataNotFoundError, match="does not exist"):
        data.CIFAR10(root="/no/such/folder").setup()


def test_idx_reader_refuses_truncated_files(tmp_path):
    good = bytes([0, 0, 8, 3]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") * 2 + bytes(range(18))
    (tmp_path / "ok.gz").write_bytes(gzip.compress(good))
    assert data.read_idx(tmp_path / "ok.gz").shape == (2, 3, 3)
    (tmp_path / "bad.gz").write_bytes(gzip.compress(good[:-1]))
    with pytest.raises(ValueError, match="truncated"):
        data.read_idx(tmp_path / "bad.gz")


def test_image_folder_with_labels(tmp_path):
    from PIL import Image

    for c, shade in (("cats", 40), ("dogs", 200)):
        (tmp_path / c).mkdir()
        for i in range(3):
            Image.new("RGB", (20, 10), (shade, shade, shade)).save(tmp_path / c / f"{i}.png")
    dm = data.ImageFolder(tmp_path, labels=True, image_size=8, batch_size=2)
    ds = dm.dataset()
    assert len(ds) == 6 and dm.classes == ("cats", "dogs")
    x, y = ds[5]
    assert x.shape == (3, 8, 8) and y == 1
    assert abs(float(x.mean()) - (200 / 127.5 - 1)) < 1e-2
    unlabelled = data.ImageFolder(tmp_path, image_channels=1, image_size=8).dataset()
    assert unlabelled[0][0].shape == (1, 8, 8) and int(unlabelled[0][1]) == -1
    with pytest.raises(data.DataNotFoundError, match="no images"):
        data.ImageFolder(tmp_path / "cats", labels=True).setup()


def test_real_mnist(data_root):
    dm = data.MNIST(batch_size=32, image_size=32)
    train, test = dm.dataset("train"), dm.dataset("test")
    assert len(train) == 60_000 and len(test) == 10_000
    assert int(train[0][1]) == 5 and int(test[0][1]) == 7  # as the data README says
    x, _ = train[0]
    assert x.shape == (1, 32, 32) and x.min() == -1 and x.max() > 0.9
    batch, labels = next(iter(dm.train_dataloader()))
    assert batch.shape == (32, 1, 32, 32) and set(labels.tolist()) <= set(range(10))


def test_real_fashion_mnist(data_root):
    dm = data.FashionMNIST(image_size=28)
    try:
        train = dm.dataset("train")
    except data.DataNotFoundError as e:
        need(False, str(e))
    assert len(train) == 60_000 and train[0][0].shape == (1, 28, 28)
    assert len(dm.dataset("test")) == 10_000


@pytest.mark.slow
def test_real_cifar10(data_root):
    dm = data.CIFAR10(batch_size=8)
    test = dm.dataset("test")
    assert len(test) == 10_000 and test[0][0].shape == (3, 32, 32)
    counts = torch.bincount(test.labels, minlength=10)
    assert counts.tolist() == [1000] * 10
    assert dm.classes == data.CIFAR10_CLASSES


def test_labels_outside_the_classes_are_refused_once_at_load():
    images = torch.zeros(3, 1, 4, 4, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"labels \[2\] are not class ids of the 2 classes \('a', 'b'\)"):
        data.TensorImageDataset(images, torch.tensor([0, 2, 1]), ("a", "b"))
    assert len(data.TensorImageDataset(images, torch.tensor([-1, -1, -1]))) == 3  # unlabelled: no classes
