"""CycleGAN: parity with junyanz' ResNet generator through the upstream file layout, both directions, the history
pools, and unpaired data."""

import pytest
import torch

import ganzoo
from ganzoo.hub import CheckpointError
from ganzoo.models.cyclegan import ImagePool
from tests.conftest import fixture_path


def fixture(name: str) -> dict:
    return torch.load(fixture_path(f"{name}.pt"), weights_only=True)


def test_a_released_generator_from_2017_loads_exactly_as_one_direction(tmp_path):
    """A released CycleGAN file (one generator, A -> B) from before PyTorch 0.4: InstanceNorm layers carry running
    statistics, the serialisation is the legacy one. The stats are dropped, the architecture read from the keys,
    and the outputs match upstream's to 1e-5; the other direction is refused with a message saying so."""
    f = fixture("cyclegan_resnet9")
    torch.save(f["state_dict_legacy_instancenorm"], tmp_path / "horse2zebra.pth", _use_new_zipfile_serialization=False)
    gan = ganzoo.from_upstream(tmp_path / "horse2zebra.pth", variant="cyclegan")
    hp = gan.hparams
    assert (hp.n_blocks, hp.ngf, hp.norm, hp.dropout) == (9, 8, "instance", False)
    assert gan.untrained_parts == {"generator_ba", "discriminator_a", "discriminator_b"}
    torch.testing.assert_close(gan.translate(f["x"]), f["y"], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="no trained b2a generator .*direction='a2b'"):
        gan.translate(f["x"], direction="b2a")
    with pytest.raises(RuntimeError, match="discriminator_a and discriminator_b and generator_ba were never trained"):
        gan.train()
        gan.train_fresh_parts = False
        from tests.test_variants import fit

        fit(gan, batches=1)


def test_a_training_folder_loads_all_four_networks_in_their_places(tmp_path):
    g, d = fixture("cyclegan_resnet9"), fixture("patchgan_basic_instance")
    torch.save(g["state_dict"], tmp_path / "latest_net_G_A.pth")
    torch.save({k: -v for k, v in g["state_dict"].items()}, tmp_path / "latest_net_G_B.pth")
    torch.save(d["state_dict"], tmp_path / "latest_net_D_A.pth")  # upstream's D_A judges G_A's outputs: domain B
    torch.save({k: 2 * v for k, v in d["state_dict"].items()}, tmp_path / "latest_net_D_B.pth")
    gan = ganzoo.from_upstream(tmp_path, variant="cyclegan")
    assert gan.untrained_parts == set() and (gan.hparams.ndf, gan.hparams.n_layers) == (8, 3)
    torch.testing.assert_close(gan.translate(g["x"]), g["y"], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(gan.translate(g["x"], direction="b2a"), g["y"], atol=1e-3)  # G_B is the other one
    torch.testing.assert_close(gan.discriminator_b(d["x"]), d["y"], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(gan.discriminator_a(d["x"]), d["y"], atol=1e-3)


def test_a_unet_file_is_refused_naming_what_it_found(tmp_path):
    torch.save(fixture("pix2pix_unet128")["state_dict"], tmp_path / "latest_net_G_A.pth")
    with pytest.raises(ValueError, match="found a U-Net generator .*variant='pix2pix'"):
        ganzoo.from_upstream(tmp_path / "latest_net_G_A.pth", variant="cyclegan")


def test_a_file_missing_a_key_of_a_network_it_holds_is_refused_naming_the_key(tmp_path):
    """Only the networks a file does not hold at all are built fresh: a key missing from one it holds is an error,
    never a fresh value slipped into a converted network."""
    state = fixture("cyclegan_resnet9")["state_dict"]
    del state["model.10.conv_block.5.bias"]
    torch.save(state, tmp_path / "truncated.pth")
    with pytest.raises(CheckpointError, match=r"missing \(1\): generator_ab\.model\.10\.conv_block\.5\.bias"):
        ganzoo.from_upstream(tmp_path / "truncated.pth", variant="cyclegan")


def test_the_image_pool_passes_through_until_full_then_swaps_about_half():
    torch.manual_seed(0)
    pool = ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first) and len(pool.images) == 4
    new = -1.0 - torch.arange(400.0).view(400, 1, 1, 1)
    out = pool.query(new)
    swapped = (out != new).sum().item()
    assert 150 < swapped < 250  # each new image: a stored one with probability 1/2
    assert len(pool.images) == 4 and (pool.images < 0).all()  # what came out was replaced by the new
    assert set(out[out != new].tolist()) >= {0.0, 1.0, 2.0, 3.0}  # the first four came back out
    assert ImagePool(0).query(new) is new


def test_unpaired_data_draws_b_at_random_seeded_by_epoch_and_index(tmp_path):
    from ganzoo import data
    from tests.test_data import ab_folder

    ds = data.Unpaired(root=ab_folder(tmp_path, n=12), load_size=36, crop_size=32).dataset("train")
    assert len(ds) == 12 and all(half == "left" for _, half in ds.a) and all(half == "right" for _, half in ds.b)
    a, b = ds[(2, 3)]
    assert a.shape == b.shape == (3, 32, 32)
    assert all(torch.equal(x, y) for x, y in zip(ds[(2, 3)], (a, b), strict=True))
    # B is drawn at random: without jitter, an item's B is its own file's (the negative of its A) only by chance.
    plain = data.Unpaired(root=tmp_path, load_size=32, crop_size=32, flip=False).dataset("train")
    own = [torch.allclose(b, -a, atol=1e-6) for a, b in (plain[(e, 3)] for e in range(12))]
    assert sum(own) <= 3 and len({tuple(plain[(e, 3)][1][:, 0, 0].tolist()) for e in range(12)}) >= 4


def test_an_official_entry_offline_names_the_url_and_where_to_put_the_file_then_loads_both_directions(
    tmp_path, monkeypatch
):
    """cyclegan-horse2zebra holds junyanz' horse2zebra.pth and zebra2horse.pth. With no network and nothing cached
    the load fails in one line naming the URL and the place for the file; with the files placed there (the fixture's
    weights standing in for the released ones), it converts and translates both ways."""
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path))
    folder = tmp_path / "upstream" / "cyclegan-horse2zebra-files"
    with pytest.raises(ganzoo.hub.HubError) as error:
        ganzoo.load("cyclegan-horse2zebra")
    message = str(error.value)
    assert "\n" not in message
    assert "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/horse2zebra.pth" in message
    assert f"put it at {folder / 'latest_net_G_A.pth'}" in message
    f = fixture("cyclegan_resnet9")
    torch.save(f["state_dict_legacy_instancenorm"], folder / "latest_net_G_A.pth")  # as released in 2017
    torch.save({k: -v for k, v in f["state_dict"].items()}, folder / "latest_net_G_B.pth")
    gan = ganzoo.load("cyclegan-horse2zebra")
    assert gan.untrained_parts == {"discriminator_a", "discriminator_b"}  # upstream released generators only
    torch.testing.assert_close(gan.translate(f["x"]), f["y"], rtol=1e-5, atol=1e-5)
    back = gan.translate(f["x"], direction="b2a")
    assert back.shape == f["x"].shape and not torch.allclose(back, f["y"], atol=1e-3)
    info = ganzoo.hub.info("cyclegan-horse2zebra")
    assert info["license"] == "bsd" and "junyanz" in info["source"]


def test_ganzoo_translate_does_a_folder_of_mixed_sizes_and_keeps_names_and_sizes(tmp_path):
    import subprocess
    import sys

    from PIL import Image

    torch.manual_seed(0)
    gan = ganzoo.create("cyclegan", image_size=32, ngf=4, ndf=4, n_blocks=2, n_layers=2)
    ganzoo.save_pretrained(gan, tmp_path / "model")
    sizes = {"a.png": (37, 21), "sub/b.jpg": (64, 64), "c.png": (50, 33)}  # not multiples of 4, in a subfolder too
    for name, size in sizes.items():
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (30, 90, 200)).save(tmp_path / "in" / name)
    cmd = [sys.executable, "-m", "ganzoo.cli", "translate", str(tmp_path / "model"), str(tmp_path / "in")]
    out = subprocess.run([*cmd, str(tmp_path / "out"), "--direction", "b2a"], capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "translated 3 images" in out.stdout
    for name, size in sizes.items():
        with Image.open(tmp_path / "out" / name) as im:
            assert im.size == size
    expected = gan.translate(Image.open(tmp_path / "in" / "a.png"), direction="b2a")
    with Image.open(tmp_path / "out" / "a.png") as im:
        assert list(im.getdata()) == list(expected.getdata())  # b2a, as in Python
    bad = subprocess.run([sys.executable, "-m", "ganzoo.cli", "translate", "dcgan-mnist", str(tmp_path / "in"),
                          str(tmp_path / "out2")], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert bad.returncode == 1 and "ganzoo sample dcgan-mnist" in bad.stderr and "Traceback" not in bad.stderr


def test_with_an_ema_both_generators_are_averaged_and_translate_uses_the_averages():
    from tests.test_variants import fit

    torch.manual_seed(0)
    gan = ganzoo.create("cyclegan", image_size=32, ngf=4, ndf=4, n_blocks=2, n_layers=2, pool_size=2, ema_kimg=0.01)
    assert gan.ema_networks == ("generator_ab", "generator_ba")
    before = {n: [p.clone() for p in getattr(gan, f"{n}_ema").parameters()] for n in gan.ema_networks}
    fit(gan, batches=2)
    for n in gan.ema_networks:
        ema, live = getattr(gan, f"{n}_ema"), getattr(gan, n)
        moved = [not torch.equal(a, b) for a, b in zip(before[n], ema.parameters(), strict=True)]
        assert all(moved), f"{n}_ema did not move"
        assert any(not torch.equal(a, b) for a, b in zip(ema.parameters(), live.parameters(), strict=True))
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    for direction, name in gan.directions.items():
        expected = getattr(gan, f"{name}_ema").eval()(x).clamp(-1, 1)
        torch.testing.assert_close(gan.translate(x, direction), expected, rtol=0, atol=0)


def test_tiled_translation_is_the_whole_image_translation_in_bounded_pieces():
    """With tiles whose context covers the generator's receptive field, tiling changes nothing (no seams) and no
    generator call sees more than a tile and its context; with too little context the seams show."""
    torch.manual_seed(0)
    gan = ganzoo.create("cyclegan", image_size=32, ngf=4, ndf=4, n_blocks=2, n_layers=2, norm="batch")
    with torch.no_grad():  # running statistics that are not the identity
        gan.generator_ab.train()(torch.randn(4, 3, 64, 64) * 0.5 + 0.2)
    gan.eval()
    x = torch.rand(2, 3, 150, 174) * 2 - 1
    whole = gan.translate(x)
    sides = []
    hook = gan.generator_ab.register_forward_pre_hook(lambda m, args: sides.append(max(args[0].shape[-2:])))
    tiled = gan.translate(x, tile=32, tile_overlap=40)
    hook.remove()
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-5)
    assert len(sides) == 5 * 6 and max(sides) <= 32 + 2 * 40 < 150
    assert (gan.translate(x, tile=32, tile_overlap=0) - whole).abs().max() > 1e-3  # outputs are ~0.05 here
    # Any size: a tile and an overlap off the generator's grid are rounded up onto it; PIL and uint8 take tiles too.
    odd = torch.randint(0, 256, (1, 3, 61, 83), dtype=torch.uint8)
    assert torch.equal(gan.translate(odd, tile=30, tile_overlap=38), gan.translate(odd))
    with pytest.raises(ValueError, match="tile must be positive"):
        gan.translate(x, tile=0)
