"""Pix2Pix: parity with junyanz' networks through the upstream file layout, and the image-to-image API."""

import pytest
import torch
from PIL import Image

import ganzoo
from ganzoo import convert
from ganzoo.models.pix2pix import PatchDiscriminator
from tests.conftest import fixture_path


def fixture(name: str) -> dict:
    return torch.load(fixture_path(f"{name}.pt"), weights_only=True)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-serialisation"])
def test_a_junyanz_generator_file_loads_exactly(tmp_path, legacy):
    """The U-Net fixture (unet_128, batch norm, dropout) written as upstream writes ``latest_net_G.pth``: the
    architecture comes from the keys, and the outputs match upstream's to 1e-5 (eval mode)."""
    f = fixture("pix2pix_unet128")
    torch.save(f["state_dict"], tmp_path / "latest_net_G.pth", _use_new_zipfile_serialization=not legacy)
    gan = ganzoo.from_upstream(tmp_path / "latest_net_G.pth", variant="pix2pix")
    hp = gan.hparams
    assert (hp.num_downs, hp.ngf, hp.norm, hp.input_channels, hp.output_channels) == (7, 4, "batch", 3, 3)
    assert gan.untrained_parts == {"discriminator"} and gan.size_multiple == 128
    torch.testing.assert_close(gan.translate(f["x"]), f["y"], rtol=1e-5, atol=1e-5)


def test_a_junyanz_training_folder_loads_generator_and_discriminator(tmp_path):
    g, d = fixture("pix2pix_unet128"), fixture("patchgan_basic_batch")  # D on 3 + 3 channels, batch norm
    torch.save(g["state_dict"], tmp_path / "latest_net_G.pth")
    torch.save(d["state_dict"], tmp_path / "latest_net_D.pth")
    torch.save({k: v + 1 for k, v in d["state_dict"].items()}, tmp_path / "5_net_D.pth")  # an older epoch's
    gan = ganzoo.from_upstream(tmp_path, variant="pix2pix")
    assert gan.untrained_parts == set() and (gan.hparams.ndf, gan.hparams.n_layers) == (8, 3)
    torch.testing.assert_close(gan.discriminator(d["x"]), d["y"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gan.translate(g["x"]), g["y"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name, channels, norm", [("patchgan_basic_batch", 6, "batch"),
                                                  ("patchgan_basic_instance", 3, "instance")])  # fmt: skip
def test_patchgan_matches_upstream(name, channels, norm):
    f = fixture(name)
    net = PatchDiscriminator(channels, ndf=8, n_layers=3, norm=norm).eval()
    net.load_state_dict(f["state_dict"], strict=True)
    assert net(f["x"]).shape == (2, 1, 6, 6)
    torch.testing.assert_close(net(f["x"]), f["y"], rtol=1e-5, atol=1e-5)


def test_a_file_of_another_architecture_is_refused_naming_what_it_found(tmp_path):
    torch.save(fixture("cyclegan_resnet9")["state_dict"], tmp_path / "latest_net_G.pth")
    with pytest.raises(ValueError, match="found a ResNet generator .*variant='cyclegan'"):
        ganzoo.from_upstream(tmp_path / "latest_net_G.pth", variant="pix2pix")


def test_a_hostile_pth_is_refused_and_its_payload_never_runs(tmp_path):
    from tests.test_convert import Hostile

    marker = tmp_path / "ran"
    torch.save({"model.model.0.weight": torch.ones(1), "x": Hostile(marker)}, tmp_path / "latest_net_G.pth")
    with pytest.raises(convert.UnsafePickleError):
        ganzoo.from_upstream(tmp_path / "latest_net_G.pth", variant="pix2pix")
    assert not marker.exists()


@pytest.fixture(scope="module")
def unet():
    f = fixture("pix2pix_unet128")
    gan = ganzoo.create("pix2pix", num_downs=7, ngf=4, norm="batch")
    state = {f"generator.{k}": v for k, v in f["state_dict"].items()}
    gan.load_state_dict(state | {k: v for k, v in gan.state_dict().items() if k.startswith("discriminator.")})
    return gan.eval()


def test_translate_takes_any_size_and_returns_the_kind_it_was_given(unet):
    x = torch.rand(2, 3, 100, 70) * 2 - 1  # not multiples of 128: reflect-padded, then cropped back
    y = unet.translate(x)
    assert y.shape == x.shape and y.dtype == torch.float32 and y.abs().max() <= 1
    u8 = unet.translate(((x + 1) * 127.5).round().to(torch.uint8))
    assert u8.dtype == torch.uint8 and u8.shape == x.shape
    images = [Image.new("RGB", (90, 50), (200, 10, 10)), Image.new("RGB", (128, 128), (0, 90, 0))]
    out = unet.translate(images)
    assert [im.size for im in out] == [(90, 50), (128, 128)] and all(im.mode == "RGB" for im in out)
    assert unet.translate(images[0]).size == (90, 50)
    with pytest.raises(ValueError, match="multiples of 128 .*nearest: 0?.*128.*pad=True"):
        unet.translate(x, pad=False)
    with pytest.raises(ValueError, match="direction 'b2a'.*translates a2b"):
        unet.translate(x, direction="b2a")
    with pytest.raises(ValueError, match="1-channel images: .* takes 3 channels"):
        unet.translate(x[:, :1])


def test_translate_is_deterministic_unless_asked_for_upstreams_test_mode(unet):
    x = fixture("pix2pix_unet128")["x"]
    torch.testing.assert_close(unet.translate(x), unet.translate(x), rtol=0, atol=0)
    torch.manual_seed(0)
    a = unet.translate(x, train_mode=True)  # batch statistics and dropout, as upstream's test.py without --eval
    b = unet.translate(x, train_mode=True)
    assert not torch.equal(a, b) and not torch.allclose(a, unet.translate(x), atol=1e-3)
    assert not unet.generator.training  # put back as it was


def test_upstream_state_drops_what_pre_0_4_instance_norm_files_carry():
    """Files saved by PyTorch < 0.4 give InstanceNorm layers running statistics; upstream's loader drops them, and
    so does ganzoo (the CycleGAN fixture holds the same weights both ways). Batch norm keeps its own."""
    from ganzoo.models.pix2pix import upstream_state

    f = fixture("cyclegan_resnet9")
    legacy = {f"module.{k}": v for k, v in f["state_dict_legacy_instancenorm"].items()}  # and a DataParallel prefix
    assert len(legacy) > len(f["state_dict"])
    assert upstream_state(legacy).keys() == f["state_dict"].keys()
    batch = fixture("patchgan_basic_batch")["state_dict"]
    assert upstream_state(batch).keys() == batch.keys()


def test_resume_mid_epoch_is_exact_with_jittered_file_data(tmp_path):
    """Pix2Pix on AB files with crops and flips: 3 batches, save, resume to 7 == 7 straight (the crops of the
    resumed batches are the straight run's: seeded by epoch and index), the learning-rate decay included."""
    from ganzoo.callbacks import GANCheckpoint, StopAt
    from ganzoo.data import Paired
    from tests.test_data import ab_folder
    from tests.test_training import assert_same, snapshot, trainer

    root = ab_folder(tmp_path / "data", n=20)
    hparams = dict(image_size=32, num_downs=5, ngf=4, ndf=4, n_layers=2, lr_constant_kimg=0.008, lr_decay_kimg=0.04)

    def build():
        import lightning as L

        L.seed_everything(0, verbose=False)
        return ganzoo.create("pix2pix", **hparams)

    def dm():
        return Paired(root=root, load_size=40, crop_size=32, batch_size=4)

    gan = build()
    tr = trainer(tmp_path / "straight", [StopAt(batches=7)])
    tr.fit(gan, dm())
    straight = snapshot(gan, tr)
    assert tr.optimizers[0].param_groups[0]["lr"] < 2e-4  # decaying by then (7 x 4 images > 8 constant)
    first = build()
    trainer(tmp_path / "first", [StopAt(batches=3), GANCheckpoint(dirpath=tmp_path / "ckpt")]).fit(first, dm())
    resumed = build()
    tr = trainer(tmp_path / "resumed", [StopAt(batches=7)])
    tr.fit(resumed, dm(), ckpt_path=tmp_path / "ckpt" / "last.ckpt")
    assert_same(straight, snapshot(resumed, tr))


def test_evaluate_translates_the_reference_inputs_and_compares_each_with_its_target(tmp_path):
    """evaluate_translation: per-image L1/PSNR/SSIM of translate(input) against the target, in the data's order and
    direction, and KID of the translations against the targets; ganzoo.evaluate routes a translator there."""
    from ganzoo import metrics
    from ganzoo.data import Paired
    from ganzoo.metrics import paired_metrics
    from tests.test_data import ab_folder

    root = ab_folder(tmp_path, n=6)
    (root / "train").rename(root / "val")
    torch.manual_seed(0)
    gan = ganzoo.create("pix2pix", image_size=32, num_downs=5, ngf=4, ndf=4, n_layers=2).eval()
    data = Paired(root=str(root), load_size=32, crop_size=32)
    result = metrics.evaluate_translation(gan, data, metrics=["l1", "psnr", "ssim", "kid"], batch_size=4)
    x, y = (torch.stack(t) for t in zip(*(data.dataset("test")[i] for i in range(6)), strict=True))
    expected = paired_metrics(gan.translate(x), y)
    for k in ("l1", "psnr", "ssim"):
        torch.testing.assert_close(torch.tensor(result["metrics"][k]["values"]), expected[k].float(), rtol=1e-6, atol=0)
    assert result["protocol"]["pairs"]["num"] == 6 and result["protocol"]["generated"]["direction"] == "a2b"
    assert any(k.startswith("kid") for k in result["metrics"])
    # The other direction of the data is another comparison (B -> A): different numbers.
    swapped = metrics.evaluate_translation(gan, Paired(root=str(root), load_size=32, crop_size=32, direction="b2a"),
                                           metrics=["l1"])  # fmt: skip
    assert swapped["metrics"]["l1"]["mean"] != result["metrics"]["l1"]["mean"]
    assert "L1: " in metrics.format_result(result)
    # Any function of the inputs is measured the same way (the leaderboard's baselines), against the target or the
    # input: the input itself is 0 away from itself.
    same = metrics.evaluate_translation(lambda x: x, data, name="input itself", against="input", metrics=["l1"])
    assert same["metrics"]["l1"]["mean"] == 0 and same["protocol"]["generated"]["model"] == "input itself"
    to_target = metrics.evaluate_translation(lambda x: x, data, name="input itself", metrics=["l1"])
    assert to_target["metrics"]["l1"]["mean"] > 0.1
    assert metrics.comparison_key(same["protocol"]) == metrics.comparison_key(to_target["protocol"])  # same pairs
    assert metrics.comparison_key(swapped["protocol"]) != metrics.comparison_key(to_target["protocol"])


def test_reference_pairs_run_each_entry_the_way_it_was_trained(data_root):
    """pix2pix-map2sat maps the data's B (maps) to A (photos): its reference inputs are the maps, and the card says
    which way each direction runs."""
    from ganzoo import cards, metrics, registry

    sat2map, map2sat = (registry.get_pretrained(f"pix2pix-{n}") for n in ("sat2map", "map2sat"))
    photo, street_map = metrics.reference_pairs(sat2map).dataset("test")[0]
    inputs, targets = metrics.reference_pairs(map2sat).dataset("test")[0]
    assert torch.equal(inputs, street_map) and torch.equal(targets, photo) and not torch.equal(photo, street_map)
    gan = ganzoo.create("pix2pix", image_size=32, num_downs=5, ngf=4, ndf=4, n_layers=2)
    assert "`a2b`: B to A of maps" in cards.model_card(gan, map2sat.name, map2sat)
    assert "`a2b`: A to B of maps" in cards.model_card(gan, sat2map.name, sat2map)


def test_sample_quality_measures_a_translator_on_its_validation_pairs(tmp_path):
    """SampleQuality on a translator: FID/KID of the a2b translations of the first validation inputs against their
    targets (not of samples, which a translator has none of), the same on every call, training unchanged."""
    from ganzoo import metrics
    from ganzoo.callbacks import SampleQuality, StopAt
    from ganzoo.data import Paired
    from tests.test_data import ab_folder
    from tests.test_metrics import TinyFeatures
    from tests.test_training import trainer

    root = ab_folder(tmp_path / "data", n=12)
    (root / "val").mkdir()
    for f in sorted((root / "train").iterdir())[:6]:  # a validation split of 6 pairs
        f.rename(root / "val" / f.name)
    torch.manual_seed(0)
    gan = ganzoo.create("pix2pix", image_size=32, num_downs=5, ngf=4, ndf=4, n_layers=2)
    data = Paired(root=str(root), load_size=32, crop_size=32, batch_size=2)
    quality = SampleQuality(every_n_kimg=0.004, num_samples=1000, feature_net=TinyFeatures())
    tr = trainer(tmp_path / "run", [StopAt(batches=2), quality])
    tr.fit(gan, data)
    measured = quality.measure(tr, gan)
    x, y = (torch.stack(t) for t in zip(*(data.dataset("val")[i] for i in range(6)), strict=True))
    net = TinyFeatures()
    real, _ = metrics.extract(net, [metrics.to_uint8(y)])
    fake, _ = metrics.extract(net, [metrics.to_uint8(gan.translate(x))])
    assert measured["fid"] == pytest.approx(metrics.frechet_distance(real, fake), rel=1e-6)
    assert float(tr.callback_metrics["metric/fid"]) > 0


def test_the_exported_samples_translate_the_inputs_kept_in_the_checkpoint(tmp_path):
    """A translator keeps its first 8 training inputs where the data has no validation split (in checkpoints too;
    batches of 3 here, so parts of three batches), else its first 8 validation inputs: its exported samples.png is
    those inputs beside their translations, not made-up images."""
    import lightning as L
    import numpy as np

    from ganzoo.callbacks import GANCheckpoint, StopAt
    from ganzoo.data import Paired
    from ganzoo.gan import make_grid
    from tests.test_data import ab_folder
    from tests.test_training import trainer

    first = []

    class FirstBatches(L.Callback):
        def on_train_batch_start(self, trainer, gan, batch, batch_idx):
            first.append(batch[0].clone())

    root = ab_folder(tmp_path / "data", n=8)
    torch.manual_seed(0)
    gan = ganzoo.create("pix2pix", image_size=32, num_downs=5, ngf=4, ndf=4, n_layers=2)
    tr = trainer(tmp_path / "run", [StopAt(batches=4), GANCheckpoint(dirpath=tmp_path / "ckpt"), FirstBatches()])
    tr.fit(gan, Paired(root=str(root), load_size=40, crop_size=32, batch_size=3))
    loaded = ganzoo.hub.load_lightning_checkpoint(tmp_path / "ckpt" / "last.ckpt")
    assert torch.equal(loaded.preview_inputs, torch.cat(first)[:8])
    folder = ganzoo.save_pretrained(loaded, tmp_path / "export")
    shown = np.asarray(Image.open(folder / "samples.png"))
    pairs, nrow = loaded.preview(8)
    assert torch.equal(pairs[0::2], torch.cat(first)[:8]) and nrow == 4
    assert np.array_equal(shown, np.asarray(make_grid(pairs, nrow)))

    (root / "train").rename(root / "val")  # a validation split (and training data of its own)
    ab_folder(root / "other", n=8, side=36)
    (root / "other" / "train").rename(root / "train")
    data = Paired(root=str(root), load_size=40, crop_size=32, batch_size=3)
    first.clear()
    gan = ganzoo.create("pix2pix", image_size=32, num_downs=5, ngf=4, ndf=4, n_layers=2)
    trainer(tmp_path / "run2", [StopAt(batches=2), FirstBatches()]).fit(gan, data)
    val = torch.stack([data.dataset("val")[i][0] for i in range(8)])
    assert torch.equal(gan.preview_inputs, val) and not torch.equal(val[:6], torch.cat(first))
    assert torch.equal(gan.preview(8)[0][0::2], val)
