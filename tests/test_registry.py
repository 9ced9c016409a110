import pytest

import ganzoo
from ganzoo import registry
from ganzoo.registry import Pretrained, UnknownModelError


def test_list_with_wildcards_and_filters():
    assert "dcgan-mnist" in ganzoo.list()
    assert ganzoo.list("dcgan-*") == ["dcgan-mnist"]
    assert ganzoo.list("*-mnist", variant="dcgan") == ["dcgan-mnist"]
    assert ganzoo.list("nothing-like-this*") == []
    translation = ganzoo.list(task="translation")
    assert "cyclegan-horse2zebra" in translation and "dcgan-mnist" not in translation
    assert "dcgan-mnist" in ganzoo.list(task="generation") and "pix2pix-sat2map" not in ganzoo.list(task="generation")
    assert ganzoo.list(task="super-resolution") == [
        "esrgan-psnr-x4", "esrgan-x4", "realesrgan-x2plus", "realesrgan-x4plus", "realesrgan-x4plus-anime",
        "srgan-x4", "srresnet-x4"]  # fmt: skip
    assert ganzoo.list(variant="no-such-variant") == []
    assert "dcgan" in ganzoo.list(pretrained=False)
    with pytest.raises(ValueError, match="task"):
        ganzoo.list(task="painting")


def test_create_untrained_with_hparams():
    gan = ganzoo.create("dcgan", latent_dim=16, image_size=16, image_channels=3, base_channels=4)
    assert gan.hparams.latent_dim == 16
    assert gan.sample(2, seed=0).shape == (2, 3, 16, 16)


def test_unknown_names_list_the_closest():
    with pytest.raises(UnknownModelError, match="dcgan-mnist"):
        registry.get_pretrained("dcgan-mnsit")
    with pytest.raises(UnknownModelError, match="dcgan"):
        ganzoo.create("dcgam")
    with pytest.raises(UnknownModelError, match="ganzoo list"):
        ganzoo.load("totally-unknown-model")


def test_aliases_and_duplicates(monkeypatch):
    monkeypatch.setattr(registry, "_PRETRAINED", dict(registry._PRETRAINED))
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))
    entry = Pretrained(name="dcgan-test-8", variant="dcgan", dataset="test", license="mit", folder="x", aliases=("dt",))
    registry.register_pretrained(entry)
    assert registry.get_pretrained("dt") is entry
    assert ganzoo.list("dt") == ["dcgan-test-8"]
    with pytest.raises(ValueError, match="twice"):
        registry.register_pretrained(entry)


# Entries of a variant that runs other papers' models keep those papers' names: ESRGAN's and Real-ESRGAN's generators
# are the RRDB generator of ganzoo's srgan variant, and SRResNet is the SRGAN paper's own name for its generator
# trained on the MSE alone.
FAMILY_NAMES = {"srgan": ("srgan", "srresnet", "esrgan", "realesrgan")}


def test_pretrained_entries_are_complete():
    for name in ganzoo.list():
        e = registry.get_pretrained(name)
        families = FAMILY_NAMES.get(e.variant, (e.variant,))
        assert name.startswith(tuple(f"{f}-" for f in families)), f"{name} is not <variant>-<dataset>[-<res>]"
        assert e.variant in registry.variants()
        assert e.license and e.dataset
        if e.recipe:
            assert registry.recipe_path(e.recipe).is_file()


def test_entry_needs_weights_and_pinned_revision():
    with pytest.raises(ValueError, match="names no weights"):
        Pretrained(name="dcgan-x", variant="dcgan", dataset="x", license="mit")
    with pytest.raises(ValueError, match="pinned revision"):
        Pretrained(name="dcgan-x", variant="dcgan", dataset="x", license="mit", hub_repo="a/b")
