"""ESRGAN and Real-ESRGAN weights: each released key layout loads through ganzoo.from_upstream and runs as spandrel
(an independent loader of these files, chaiNNer's) runs it; other files are refused, code in a file never runs, and
an official entry offline says where its file goes."""

import re
import urllib.error
import urllib.request

import pytest
import spandrel
import torch

import ganzoo
from ganzoo import convert
from ganzoo.models.srgan import RRDBNet, SRResNet
from tests.conftest import accept_stand_in


def rrdb_state(scale: int = 4, num_blocks: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights of a small RRDB network under BasicSR's names. spandrel builds every RRDB with 32 growth
    channels, so the width and depth are small and the growth is upstream's. He-initialised: with PyTorch's default
    initialisation the residual-scaled body barely reaches the output (swapping two dense blocks moved it by 1e-5),
    with this one it carries as much as the skip (the same swap moves it by 0.2)."""
    torch.manual_seed(seed)
    net = RRDBNet(scale=scale, num_features=8, num_blocks=num_blocks, growth=32)
    for conv in (m for m in net.modules() if isinstance(m, torch.nn.Conv2d)):
        torch.nn.init.kaiming_normal_(conv.weight, a=0.2)
        torch.nn.init.uniform_(conv.bias, -0.1, 0.1)
    return net.state_dict()


def esrgan_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """BasicSR's names back to xinntao/ESRGAN's (RRDB_ESRGAN_x4.pth, RRDB_PSNR_x4.pth)."""
    renames = [(r"^body\.(\d+)\.rdb", r"RRDB_trunk.\1.RDB"), (r"^conv_body\.", "trunk_conv."),
               (r"^conv_up(\d)", r"upconv\1"), (r"^conv_hr\.", "HRconv.")]  # fmt: skip
    out = {}
    for key, value in state.items():
        for pattern, name in renames:
            key = re.sub(pattern, name, key)
        out[key] = value
    return out


def other_weights(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: -v for k, v in state.items()}


# layout: (scale, blocks, the data its file holds from BasicSR-named weights)
LAYOUTS = {
    "esrgan-original": (4, 2, esrgan_names),
    "basicsr-plain": (4, 2, lambda s: s),
    "basicsr-params": (4, 2, lambda s: {"params": s}),
    # Real-ESRGAN's files hold the EMA weights; where both are there, both loaders take params_ema.
    "realesrgan-x4plus": (4, 2, lambda s: {"params_ema": s, "params": other_weights(s)}),
    "realesrgan-x2plus": (2, 2, lambda s: {"params_ema": s}),  # conv_first takes the 12 unshuffled channels
    "realesrgan-anime-6b": (4, 6, lambda s: {"params_ema": s}),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_released_layout_loads_and_runs_as_spandrel_runs_it(tmp_path, layout):
    scale, blocks, write = LAYOUTS[layout]
    state = rrdb_state(scale, blocks)
    torch.save(write(state), tmp_path / "weights.pth")
    gan = ganzoo.from_upstream(tmp_path / "weights.pth", variant="srgan")
    hp = gan.hparams
    assert (hp.generator, hp.scale, hp.num_blocks, hp.num_features, hp.growth, hp.image_channels) == (
        "rrdb", scale, blocks, 8, 32, 3)  # fmt: skip
    assert gan.untrained_parts == set() and not hasattr(gan, "discriminator")  # a generator-only release
    reference = spandrel.ModelLoader().load_from_file(tmp_path / "weights.pth")
    assert reference.architecture.id == "ESRGAN" and reference.scale == scale
    torch.manual_seed(1)
    x = torch.rand(2, 3, 12, 10)  # [0, 1], as upstream's networks take them
    with torch.no_grad():
        expected = reference.model.eval()(x)
        ours = (gan.generator(x * 2 - 1) + 1) / 2
    assert ours.shape == (2, 3, 12 * scale, 10 * scale)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)


def test_x2_translates_odd_sizes_padded_as_upstream_pads_them(tmp_path):
    """The x2 network pixel-unshuffles by 2: translate reflect-pads odd sides to even and crops back, as spandrel
    does (both clamp to the image range)."""
    torch.save({"params_ema": rrdb_state(scale=2)}, tmp_path / "RealESRGAN_x2plus.pth")
    gan = ganzoo.from_upstream(tmp_path / "RealESRGAN_x2plus.pth", variant="srgan")
    assert gan.size_multiple == 2 and gan.output_scale == 2
    x = torch.rand(1, 3, 11, 9)
    with torch.no_grad():
        expected = spandrel.ModelLoader().load_from_file(tmp_path / "RealESRGAN_x2plus.pth").model.eval()(x)
    torch.testing.assert_close((gan.translate(x * 2 - 1) + 1) / 2, expected.clamp(0, 1), rtol=1e-5, atol=1e-5)


def test_dataparallel_and_compile_prefixes_are_dropped(tmp_path):
    state = rrdb_state()
    torch.save({"params": {f"module._orig_mod.{k}": v for k, v in state.items()}}, tmp_path / "prefixed.pth")
    torch.save(state, tmp_path / "plain.pth")
    a, b = (ganzoo.from_upstream(tmp_path / f"{n}.pth", variant="srgan") for n in ("prefixed", "plain"))
    assert dict(a.hparams) == dict(b.hparams)
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


@pytest.mark.parametrize(
    "state, found",
    [
        (SRResNet(scale=4, num_features=8, num_blocks=2).state_dict(), "found body.0.body.0.weight"),
        # BasicSR's MSRResNet: conv_first, body.<i>.conv1/2, upconv1, conv_hr, conv_last; no dense blocks
        ({k: torch.zeros(8, 3, 3, 3) for k in ("conv_first.weight", "body.0.conv1.weight", "conv_last.weight")},
         "found body.0.conv1.weight, conv_first.weight, conv_last.weight"),
        ({"model.model.0.weight": torch.zeros(4, 3, 4, 4)}, "found model.model.0.weight;"),  # pix2pix's U-Net
    ],
    ids=["srresnet", "basicsr-msrresnet", "pix2pix"],
)  # fmt: skip
def test_a_file_of_another_architecture_is_refused_naming_what_it_found(tmp_path, state, found):
    torch.save({"params": state}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not an ESRGAN/Real-ESRGAN RRDB generator") as error:
        ganzoo.from_upstream(tmp_path / "other.pth", variant="srgan")
    assert found in str(error.value) and "expected conv_first, body.<i>.rdb<1-3>.conv<1-5>" in str(error.value)


def test_a_first_conv_that_fits_no_scale_is_refused():
    state = rrdb_state()
    state["conv_first.weight"] = torch.zeros(8, 6, 3, 3)
    with pytest.raises(ValueError, match="conv_first takes 6 channels and conv_last gives 3"):
        ganzoo.hub.from_upstream_data(state, "srgan")


def test_a_hostile_pth_is_refused_and_its_payload_never_runs(tmp_path):
    from tests.test_convert import Hostile

    marker = tmp_path / "ran"
    torch.save({"params_ema": {"conv_first.weight": torch.ones(1), "x": Hostile(marker)}}, tmp_path / "evil.pth")
    with pytest.raises(convert.UnsafePickleError):
        ganzoo.from_upstream(tmp_path / "evil.pth", variant="srgan")
    assert not marker.exists()


def test_an_official_entry_offline_names_the_url_and_where_to_put_the_file_then_loads_it(tmp_path, monkeypatch):
    """realesrgan-x4plus with no network and nothing cached fails in one line naming the URL and the place for the
    file; with a file of that layout placed there (small random weights standing in for the release), it converts
    once and runs as spandrel runs the file."""
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network in this test")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    url = "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth"
    place = tmp_path / "upstream" / "realesrgan-x4plus.pth"
    with pytest.raises(ganzoo.hub.HubError) as error:
        ganzoo.load("realesrgan-x4plus")
    message = str(error.value)
    assert "\n" not in message and url in message and f"put it at {place}" in message
    torch.save({"params_ema": rrdb_state()}, place)
    gan = ganzoo.load("realesrgan-x4plus")
    assert gan.hparams.generator == "rrdb" and gan.output_scale == 4
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        expected = spandrel.ModelLoader().load_from_file(place).model.eval()(x)
    torch.testing.assert_close((gan.translate(x * 2 - 1) + 1) / 2, expected.clamp(0, 1), rtol=1e-5, atol=1e-5)
    info = ganzoo.hub.info("realesrgan-x4plus")
    assert info["license"] == "bsd-3-clause" and "Real-ESRGAN" in info["source"]


@pytest.mark.parametrize(
    ("name", "scale", "blocks", "wrap"),
    [("esrgan-x4", 4, 2, lambda s: {"params": s}), ("esrgan-psnr-x4", 4, 2, lambda s: {"params": s}),
     ("realesrgan-x2plus", 2, 2, lambda s: {"params_ema": s}),
     ("realesrgan-x4plus-anime", 4, 6, lambda s: {"params_ema": s})],
)  # fmt: skip
def test_every_other_official_entry_offline_says_where_its_file_goes(name, scale, blocks, wrap, tmp_path, monkeypatch):
    """Each official SR entry with no network fails in one line naming its URL and the place for the file; a file
    of its layout placed there (small random weights standing in for the release) loads and upscales. Where the
    release's name carries the head of its sha256, the stand-in is first refused for it (see accept_stand_in)."""
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path))
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(urllib.error.URLError("off")))
    entry = ganzoo.registry.get_pretrained(name)
    with pytest.raises(ganzoo.hub.HubError) as error:
        ganzoo.load(name)
    message = str(error.value)
    place = tmp_path / "upstream" / f"{name}.pth"
    assert "\n" not in message and entry.url.split("#")[0] in message and f"put it at {place}" in message
    torch.save(wrap(rrdb_state(scale, blocks)), place)
    accept_stand_in(monkeypatch, name, place)
    gan = ganzoo.load(name)
    assert gan.output_scale == scale and gan.upscale(torch.rand(1, 3, 7, 9) * 2 - 1).shape == (
        1,
        3,
        7 * scale,
        9 * scale,
    )
