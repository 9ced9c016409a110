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


def ab_folder(root, n: int = 16, side: int = 32, same: bool = False):
    """``n`` AB images ``side`` x ``2 side`` in ``root/train``: random A, B its negative (or A itself)."""
    from PIL import Image

    (root / "train").mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    for i in range(n):
        a = torch.randint(0, 256, (side, side, 3), generator=g, dtype=torch.uint8)
        b = a if same else 255 - a
        Image.fromarray(torch.cat([a, b], 1).numpy()).save(root / "train" / f"{i + 1}.png")
    return root


def test_paired_jitter_is_the_same_for_both_halves_and_seeded_by_epoch_and_index(tmp_path):
    ds = data.Paired(root=ab_folder(tmp_path, same=True), load_size=40, crop_size=32).dataset("train")
    for key in [(0, 0), (0, 5), (3, 5), 7]:
        a, b = ds[key]
        assert a.shape == (3, 32, 32) and torch.equal(a, b)  # one crop and one flip for both halves
    assert torch.equal(ds[(3, 5)][0], ds[(3, 5)][0])  # the same (epoch, index): the same transform
    assert sum(not torch.equal(ds[(e, 5)][0], ds[(0, 5)][0]) for e in range(1, 6)) >= 4  # other epochs: other crops
    # direction b2a swaps the halves; without jitter (val/test) A is the left half as it is.
    swapped = data.Paired(root=ab_folder(tmp_path / "neg"), load_size=32, crop_size=32, flip=False,
                          direction="b2a").dataset("train")  # fmt: skip
    a, b = swapped[0]
    torch.testing.assert_close(a, -b, rtol=0, atol=1e-6)  # the files hold A and 255 - A: in [-1, 1], a = -b


def test_paired_two_folders_and_their_errors(tmp_path):
    from PIL import Image

    for half in ("A", "B"):
        (tmp_path / "train" / half).mkdir(parents=True)
        for name in ("x.png", "y.png"):
            colour = (10, 200, 30) if half == "A" else (0, 0, 0)
            Image.new("RGB", (16, 16), colour).save(tmp_path / "train" / half / name)
    ds = data.Paired(root=tmp_path, load_size=16, crop_size=16).dataset("train")
    a, b = ds[1]
    assert len(ds) == 2 and a[1].mean() > 0.5 and b.max() == -1
    (tmp_path / "train" / "B" / "y.png").unlink()
    with pytest.raises(data.DataNotFoundError, match="lacks the partners of \\['y.png'\\]"):
        data.Paired(root=tmp_path).dataset("train")
    with pytest.raises(data.DataNotFoundError, match="no val folder"):
        data.Paired(root=tmp_path).dataset("val")


def test_real_maps(data_root):
    need((data_root / "maps").is_dir(), f"maps not found in {data_root}")
    dm = data.Paired()
    train, val = dm.dataset("train"), dm.dataset("test")  # maps has no test split: val stands in
    assert (len(train), len(val)) == (1096, 200)
    a, b = val[0]
    assert a.shape == b.shape == (3, 256, 256) and not torch.equal(a, b)
    batch = next(iter(data.Paired(batch_size=2).train_dataloader()))
    assert [x.shape for x in batch] == [(2, 3, 256, 256)] * 2
