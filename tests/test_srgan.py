"""SRGAN / SRResNet: the MATLAB bicubic kernel, the super-resolution data, the networks and their losses."""

import json

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image

import ganzoo
from ganzoo.data import SR_BENCHMARKS, SuperResolution, bicubic_resize, dihedral, read_image
from ganzoo.models.srgan import VGG_LAYERS, SRDiscriminator, VGGFeatures
from tests.test_variants import fit


def smooth_image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, h // 8 + 2, w // 8 + 2, generator=g) * 255
    x = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return (x + torch.rand(1, 3, h, w, generator=g) * 40 - 20).clamp(0, 255).round().to(torch.uint8)[0]


@pytest.mark.parametrize("benchmark", SR_BENCHMARKS)
def test_bicubic_shrink_reproduces_the_benchmarks_matlab_lr_images(benchmark, data_root):
    # The staged LR_bicubic_x4 files are MATLAB's imresize(HR, 1/4): inside a 2-pixel border every pixel agrees
    # to 1 LSB and all but a few in 1000 exactly (.5 ties in float64 vs MATLAB's arithmetic). Their outermost
    # pixels differ by a few LSB in some images: the files' borders were made from slightly different HR edges.
    data = SuperResolution(root=str(data_root), benchmark=benchmark).dataset("test")
    differing, pixels = 0, 0
    for i in range(len(data)):
        lr = read_image(data.lr_files[i]).int()
        ours = bicubic_resize(data.hr(i), 1 / 4).int()
        inner = (ours - lr)[:, 2:-2, 2:-2].abs()
        assert inner.max() <= 1, f"{data.lr_files[i]}: {int(inner.max())} LSB off"
        differing, pixels = differing + int((inner > 0).sum()), pixels + inner.numel()
    assert differing / pixels < 0.002


def test_bicubic_enlarge_matches_pil_bicubic():
    # An independent implementation of the same kernel (Keys, a = -0.5) for enlarging: PIL's, which rounds in 8-bit
    # fixed point (0.27 LSB apart on average, measured); torch's a = -0.75 kernel is 0.90 LSB away.
    x = smooth_image(40, 52)
    ours = bicubic_resize(x, 4).int()
    pil = Image.fromarray(x.permute(1, 2, 0).numpy()).resize((208, 160), Image.Resampling.BICUBIC)
    theirs = torch.from_numpy(np.array(pil)).permute(2, 0, 1).int()
    diff = (ours - theirs)[:, 8:-8, 8:-8].abs().float()  # PIL clamps at the border, MATLAB mirrors
    assert diff.max() <= 3 and diff.mean() < 0.4


def test_bicubic_float_is_unrounded_and_keeps_a_constant():
    x = torch.full((2, 3, 17, 23), 0.3)
    y = bicubic_resize(x, 1 / 4)
    assert y.shape == (2, 3, 5, 6) and y.dtype == torch.float32
    torch.testing.assert_close(y, torch.full_like(y, 0.3))


def test_dihedral_gives_eight_distinct_symmetries():
    x = torch.arange(9.0).view(1, 3, 3)
    images = [dihedral(x, k) for k in range(8)]
    assert len({tuple(im.flatten().tolist()) for im in images}) == 8


def test_training_items_are_seeded_crops_with_their_own_bicubic_lr(data_root):
    both = SuperResolution(root=str(data_root), train=["sr/BSD100/HR", "maps/train:left"], scale=4, crop_size=48)
    assert len(both.dataset("train")) == 100 + 1096  # BSD100's HR images and the maps set's aerial photos
    assert both.dataset("train")[(0, 100)][1].shape == (3, 48, 48)  # a crop of the left half of a 512x256 AB image
    data = SuperResolution(root=str(data_root), scale=4, crop_size=48).dataset("train")
    assert len(data) == 100  # by default BSD100 alone; never Set5 or Set14
    lr, hr = data[(3, 17)]
    assert lr.shape == (3, 12, 12) and hr.shape == (3, 48, 48)
    torch.testing.assert_close(data[(3, 17)][1], hr, rtol=0, atol=0)  # the same (epoch, index): the same crop
    assert not torch.equal(data[(4, 17)][1], hr)
    hr8 = ((hr + 1) * 127.5).round().to(torch.uint8)
    torch.testing.assert_close(lr, bicubic_resize(hr8, 1 / 4).float() / 127.5 - 1, rtol=0, atol=1e-6)


def test_benchmark_items_are_whole_images_with_the_staged_lr(data_root):
    data = SuperResolution(root=str(data_root), benchmark="Set14").dataset("test")
    assert len(data) == 14
    lr, hr = data[0]
    assert hr.shape[-2] == 4 * lr.shape[-2] and hr.shape[-1] == 4 * lr.shape[-1]
    torch.testing.assert_close(lr, read_image(data.lr_files[0]).float() / 127.5 - 1)


def test_srresnet_has_no_discriminator_and_trains_its_generator_alone(tmp_path):
    L.seed_everything(0, verbose=False)
    gan = ganzoo.create("srgan", image_size=16, scale=2, num_features=4, num_blocks=1, adversarial_weight=0.0)
    assert not hasattr(gan, "discriminator") and gan.ddp_networks == ("generator",)
    before = {k: v.clone() for k, v in gan.state_dict().items()}
    fit(gan, batches=2)
    assert all(not torch.equal(before[k], v) for k, v in gan.state_dict().items() if k.endswith("weight"))
    folder = ganzoo.save_pretrained(gan, tmp_path / "m")
    loaded = ganzoo.load(folder)
    assert json.loads((folder / "config.json").read_text())["parts"] == ["generator"]
    x = gan.example_inputs(2)
    torch.testing.assert_close(loaded.translate(x), gan.translate(x), rtol=0, atol=0)


def test_srgan_generator_step_uses_content_and_adversarial_terms():
    # Pixel MSE alone and the full loss give different generator gradients; the adversarial term enters with the
    # paper's 1e-3.
    L.seed_everything(0, verbose=False)
    gan = ganzoo.create("srgan", image_size=16, scale=2, num_features=4, num_blocks=1, ndf=2)
    low, high = torch.rand(2, 3, 8, 8) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    fake = gan.generator(low)
    total = gan.content_loss(fake, high) + 1e-3 * ganzoo.losses.g_nonsaturating(gan.discriminator(fake))
    torch.testing.assert_close(gan.content_loss(fake, high), torch.nn.functional.mse_loss(fake, high))
    assert total > gan.content_loss(fake, high)


@pytest.mark.parametrize("layer", sorted(VGG_LAYERS))
def test_vgg_content_features_end_at_the_papers_relu(layer):
    phi = VGGFeatures(layer, pretrained=False)
    last = phi.features[-1]
    assert isinstance(last, torch.nn.ReLU)
    convs = [m for m in phi.features if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == {"vgg22": 4, "vgg54": 16}[layer]  # conv2_2 is VGG19's 4th conv, conv5_4 its 16th
    assert len([m for m in phi.features if isinstance(m, torch.nn.MaxPool2d)]) == {"vgg22": 1, "vgg54": 4}[layer]


def test_vgg_content_loss_compares_features_not_pixels():
    torch.manual_seed(0)
    gan = ganzoo.create("srgan", image_size=32, scale=2, num_features=4, num_blocks=1, ndf=2,
                        content_loss="vgg22", vgg_pretrained=False)  # fmt: skip
    a = torch.rand(1, 3, 32, 32) * 2 - 1
    phi = gan._content[0]
    torch.testing.assert_close(gan.content_loss(a, -a), torch.nn.functional.mse_loss(phi(a), phi(-a)))
    plain = ganzoo.create("srgan", image_size=32, scale=2, num_features=4, num_blocks=1, ndf=2)
    assert gan.state_dict().keys() == plain.state_dict().keys()  # the loss network is not part of the model


def test_dense_discriminator_head_refuses_another_size():
    d = SRDiscriminator(ndf=2, image_size=32, head="dense")
    assert d(torch.zeros(2, 3, 32, 32)).shape == (2,)
    with pytest.raises(ValueError, match="32x32"):
        d(torch.zeros(1, 3, 48, 48))
    assert SRDiscriminator(ndf=2, head="pooled")(torch.zeros(1, 3, 48, 40)).shape == (1,)


def tiny_sr(scale: int = 2, **kwargs) -> ganzoo.gan.ImageToImageGAN:
    torch.manual_seed(0)
    gan = ganzoo.create("srgan", image_size=16, scale=scale, num_features=4, num_blocks=1, ndf=2, **kwargs)
    # Random batch-norm statistics, so that eval mode differs from batch statistics and tiles must agree with it.
    for m in gan.generator.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return gan.eval()


def test_tiled_upscale_is_the_whole_image_in_bounded_pieces():
    # The tiny SRResNet sees 10 LR pixels around each output: tiles with 12 or more of context agree with the whole
    # image where each is kept, so the blend is exact; no network call sees more than a tile and its context.
    gan = tiny_sr()
    x = torch.rand(2, 3, 45, 70) * 2 - 1
    whole = gan.upscale(x, tile=None)
    seen = []
    hook = gan.generator.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[-2:]))
    tiled = gan.upscale(x, tile=16, overlap=16)
    hook.remove()
    assert whole.shape == (2, 3, 90, 140)
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-5)
    assert max(max(s) for s in seen) <= 16 + 2 * 16 and len(seen) > 4
    # Without context the tiles' edges differ from the whole image: what the context removes.
    assert (gan.upscale(x, tile=16, overlap=0) - whole).abs().max() > 1e-3


def test_srresnet_x4_tiles_show_no_seam_on_a_real_photo(data_root):
    # The shipped SRResNet, 32-px tiles with the default 16 px of context over a Set14 LR crop (8 tile edges across
    # its 2048 output rows and columns): every output pixel within half a grey level of the whole-image result, and
    # the step across each tile edge (the mean absolute difference of the two output rows or columns that meet
    # there) as in the whole image. Without context the same tiles meet in visible seams, which the check sees.
    gan = ganzoo.load("srresnet-x4")
    x = read_image(data_root / "sr/Set14/LR_bicubic_x4/img_013.png")[None, :, :96, :128]
    whole, tiled, bare = (gan.upscale(x, tile=t, overlap=o) for t, o in ((None, 16), (32, 16), (32, 0)))
    assert whole.shape == (1, 3, 384, 512)

    def edge_steps(y: torch.Tensor) -> torch.Tensor:
        y = y.float()
        rows = [(y[..., e, :] - y[..., e - 1, :]).abs().mean() for e in range(128, 384, 128)]
        cols = [(y[..., e] - y[..., e - 1]).abs().mean() for e in range(128, 512, 128)]
        return torch.stack(rows + cols)

    assert (tiled.float() - whole.float()).abs().max() <= 1
    torch.testing.assert_close(edge_steps(tiled), edge_steps(whole), rtol=0, atol=0.1)
    assert (edge_steps(bare) - edge_steps(whole)).max() > 2  # grey levels: a seam


class GlobalShift(torch.nn.Module):
    """A 2x upscaler that sees the whole input (its mean), as no tile context can cover."""

    def forward(self, x):
        return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest") + x.mean((2, 3), keepdim=True)


def test_blending_turns_a_tile_disagreement_into_a_ramp():
    # Tiles of a network that sees further than their context disagree: kept as they are, the two sides of a
    # tile edge would meet in one jump; cross-fading spreads it linearly over the band (8 output columns here).
    gan = tiny_sr()
    x = torch.zeros(1, 3, 8, 64)
    x[..., 32:] = 0.5  # the content's own step: 0.5 between output columns 63 and 64, on a tile edge
    tiled = gan.run(GlobalShift(), x, tile=16, tile_overlap=8)
    steps = (tiled[0, 0, 0, 1:] - tiled[0, 0, 0, :-1]).abs()
    assert steps[56:72].sum() - 0.5 > 0.2  # the tiles disagree by more than 0.2 around that edge ...
    assert steps.max() < 0.55  # ... but no single column jumps by more than a tenth of the content's step more


def test_upscale_returns_the_kind_it_was_given():
    gan = tiny_sr()
    u8 = torch.randint(0, 256, (2, 3, 9, 11), dtype=torch.uint8)
    out = gan.upscale(u8)
    assert out.dtype == torch.uint8 and out.shape == (2, 3, 18, 22)
    torch.testing.assert_close(out, ganzoo.gan.to_uint8(gan.upscale(u8.float() / 127.5 - 1)), rtol=0, atol=0)
    rgb = Image.fromarray(u8[0].permute(1, 2, 0).numpy())
    assert gan.upscale(rgb).size == (22, 18) and gan.upscale(rgb).mode == "RGB"
    gray = rgb.convert("L")
    up = gan.upscale(gray)
    assert up.mode == "L" and up.size == (22, 18)
    rgba = rgb.copy()
    rgba.putalpha(Image.fromarray(np.tile(np.arange(0, 242, 22, dtype=np.uint8), (9, 1))))
    up = gan.upscale(rgba)
    assert up.mode == "RGBA" and up.size == (22, 18)
    alpha = torch.from_numpy(np.array(up.getchannel("A"))).int()
    expected = bicubic_resize(torch.from_numpy(np.array(rgba.getchannel("A")))[None], 2)[0].int()
    assert (alpha - expected).abs().max() <= 1  # the alpha channel: MATLAB's bicubic, not the network
    assert torch.equal(torch.from_numpy(np.array(up.convert("RGB"))), torch.from_numpy(np.array(gan.upscale(rgb))))
    # 16-bit gray keeps its 16 bits (PIL's own conversion to RGB would clip it at 255): the same as the float path.
    deep = torch.randint(0, 65536, (9, 11), dtype=torch.int32)
    up = gan.upscale(Image.fromarray(deep.numpy().astype(np.uint16)))
    assert up.mode == "I;16" and up.size == (22, 18)
    expected = (gan.upscale(deep[None, None].float() / 32767.5 - 1)[0, 0] + 1) * 32767.5
    assert (torch.from_numpy(np.array(up).astype(np.float32)) - expected).abs().max() <= 0.5
    with pytest.raises(ValueError, match="float image"):
        gan.upscale(Image.fromarray(deep.numpy().astype(np.float32)))
    four = torch.cat([u8, u8[:, :1]], 1)
    assert gan.upscale(four).shape == (2, 4, 18, 22)
    with pytest.raises(ValueError, match="channels"):
        gan.upscale(torch.zeros(1, 2, 8, 8))


def test_bf16_upscale_is_close_to_fp32():
    gan = tiny_sr()
    x = torch.rand(1, 3, 12, 12) * 2 - 1
    torch.testing.assert_close(gan.upscale(x, dtype=torch.bfloat16), gan.upscale(x), rtol=0, atol=0.05)


def test_a_translator_does_not_upscale():
    torch.manual_seed(0)
    pix = ganzoo.create("pix2pix", **ganzoo.registry.get_variant("pix2pix").tiny)
    with pytest.raises(ValueError, match="translate"):
        pix.upscale(torch.zeros(1, 3, 32, 32))


def test_bicubic_reference_row_is_the_papers(data_root):
    # The SRGAN paper's bicubic row: Set5 28.43, Set14 25.99, BSD100 25.94 dB (Y, 4 px shaved); its Set14 images
    # are not exactly the staged ones (../shared/METRICS.md: PIL's bicubic gives 26.09 on these).
    from ganzoo.metrics import bicubic_upscaler, evaluate_super_resolution

    result = evaluate_super_resolution(bicubic_upscaler(4), name="bicubic", scale=4, root=data_root, progress=False)
    psnr = {k.split("/")[1]: v["mean"] for k, v in result["metrics"].items() if k.startswith("psnr")}
    assert abs(psnr["Set5"] - 28.43) < 0.01 and abs(psnr["Set14"] - 26.09) < 0.01 and abs(psnr["BSD100"] - 25.96) < 0.01
    assert result["protocol"]["benchmarks"]["Set14"]["num"] == 14 and result["protocol"]["scale"] == 4


def test_evaluate_dispatches_an_sr_model_to_the_sr_protocol(data_root):
    gan = tiny_sr(scale=4)
    result = ganzoo.evaluate(gan, metrics=("fid",), progress=False)
    assert result["protocol"]["task"] == "super-resolution"
    assert set(result["metrics"]) == {f"{m}/{b}" for m in ("psnr", "ssim", "detail") for b in SR_BENCHMARKS}
    assert len(result["metrics"]["psnr/BSD100"]["values"]) == 100


def test_cli_upscales_a_folder_of_mixed_images_keeping_names_and_modes(tmp_path, capsys):
    from ganzoo import cli

    folder = ganzoo.save_pretrained(tiny_sr(), tmp_path / "sr")
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (13, 21, 3), dtype=np.uint8)).save(inputs / "a.png")
    Image.fromarray(rng.integers(0, 256, (7, 9), dtype=np.uint8)).save(inputs / "sub" / "b.png")
    Image.fromarray(rng.integers(0, 256, (10, 6, 4), dtype=np.uint8)).save(inputs / "c.png")
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(inputs / "d.jpg")
    Image.fromarray(rng.integers(0, 256, (5, 6, 2), dtype=np.uint8), "LA").save(inputs / "e.png")
    Image.fromarray(rng.integers(0, 65536, (6, 5), dtype=np.uint16)).save(inputs / "f.png")  # 16-bit gray
    assert Image.open(inputs / "f.png").mode.startswith("I")
    assert cli.main(["upscale", str(folder), str(inputs), str(tmp_path / "out")]) == 0
    sizes = {p.relative_to(tmp_path / "out").as_posix(): (Image.open(p).size, Image.open(p).mode)
             for p in (tmp_path / "out").rglob("*.*")}  # fmt: skip
    assert sizes == {"a.png": ((42, 26), "RGB"), "sub/b.png": ((18, 14), "L"), "c.png": ((12, 20), "RGBA"),
                     "d.jpg": ((16, 16), "RGB"), "e.png": ((12, 10), "LA"), "f.png": ((10, 12), "I;16")}  # fmt: skip
    assert "upscaled 6 images 2x" in capsys.readouterr().out
    assert cli.main(["translate", str(folder), str(inputs / "a.png"), str(tmp_path / "t.png")]) == 1
    assert "ganzoo upscale" in capsys.readouterr().err


def test_preview_after_training_shows_lr_bicubic_output_and_hr_rows():
    gan = tiny_sr()
    fit(gan.train(), batches=1)
    images, nrow = gan.preview(8)
    assert nrow == 4 and images.shape == (32, 3, 16, 16)
    lr, bicubic, out, hr = images.view(8, 4, 3, 16, 16).unbind(1)
    torch.testing.assert_close(hr, gan.preview_targets)  # the validation HR the inputs were made from
    torch.testing.assert_close(bicubic, bicubic_resize(gan.preview_inputs, 2).clamp(-1, 1))
    torch.testing.assert_close(out, gan.translate(gan.preview_inputs))
    torch.testing.assert_close(lr[..., ::2, ::2], gan.preview_inputs)


def test_previews_are_aligned_centre_crops_of_the_first_benchmark_images(data_root):
    """Where the data has a validation split, the preview's fixed pairs are its images, each LR crop the HR crop's
    own pixels shrunk (Set5's staged x4 LR files; the images here are all at least 96 HR pixels a side)."""
    gan = ganzoo.create("srgan", image_size=96, scale=4, num_features=4, num_blocks=1, ndf=2)
    data = SuperResolution(root=str(data_root), benchmark="Set5", scale=4)
    gan.keep_validation_previews(data)
    lr, hr = gan.preview_inputs, gan.preview_targets
    assert lr.shape == (5, 3, 24, 24) and hr.shape == (5, 3, 96, 96)
    for i in range(5):
        x = data.dataset("val")[i][0]
        top, left = (x.shape[-2] - 24) // 2, (x.shape[-1] - 24) // 2
        assert torch.equal(lr[i], x[:, top : top + 24, left : left + 24])
    # Aligned: the HR crop shrunk is its LR crop (up to the files' rounding, away from the crop's border, where the
    # crop lacks the neighbours the whole image had); a crop one LR pixel off is far from it.
    inner = (slice(None), slice(None), slice(3, -3), slice(3, -3))
    shrunk = bicubic_resize(hr, 1 / 4)
    assert (shrunk - lr)[inner].abs().mean() < 0.01
    assert (shrunk[..., 1:, :] - lr[..., :-1, :])[inner].abs().mean() > 0.03


def test_init_from_copies_the_srresnet_generator_into_a_fresh_srgan_only(tmp_path):
    from ganzoo.callbacks import InitFrom

    shape = dict(image_size=16, scale=2, num_features=4, num_blocks=1)
    torch.manual_seed(0)
    trained = ganzoo.create("srgan", adversarial_weight=0.0, **shape)
    trained.images_seen, trained.batches_seen, trained.train_seconds = 3200, 200, 7200.0
    trained.hardware = ["1 x test CPU"]
    srresnet = ganzoo.save_pretrained(trained, tmp_path / "srresnet")
    torch.manual_seed(1)
    srgan = ganzoo.create("srgan", ndf=2, ema_kimg=1.0, **shape)
    d_before = {k: v.clone() for k, v in srgan.discriminator.state_dict().items()}
    InitFrom(str(srresnet)).on_fit_start(None, srgan)
    source = ganzoo.load(srresnet).generator.state_dict()
    for net in (srgan.generator, srgan.generator_ema):
        assert all(torch.equal(v, source[k]) for k, v in net.state_dict().items())
    assert all(torch.equal(v, d_before[k]) for k, v in srgan.discriminator.state_dict().items())
    # The source's training record travels with the weights to the exported folder and its card, which counts it.
    assert srgan.started_from == {"source": str(srresnet), "parts": ["generator"], "images_seen": 3200,
                                  "batches_seen": 200, "skipped_steps": 0, "train_seconds": 7200.0,
                                  "hardware": ["1 x test CPU"]}  # fmt: skip
    srgan.images_seen, srgan.batches_seen, srgan.train_seconds = 1000, 50, 1800.0
    exported = ganzoo.load(ganzoo.save_pretrained(srgan, tmp_path / "srgan"))
    assert exported.started_from == srgan.started_from
    card = ganzoo.cards.model_card(exported, "srgan-test")
    assert "| images seen | 1,000 (1.0 kimg) in this run; 4,200 (4.2 kimg) with what it started from |" in card
    assert "| wall time of the training steps | 0.50 h (1,800 s) in this run; 2.50 h (9,000 s) with what it " in card
    assert (f"| started from | generator of `{srresnet}`, trained for 3,200 images (3.2 kimg, 200 batches) in 2.00 h "
            "on 1 x test CPU |") in card  # fmt: skip
    untrained = ganzoo.save_pretrained(ganzoo.create("srgan", adversarial_weight=0.0, **shape), tmp_path / "untrained")
    InitFrom(str(untrained)).on_fit_start(None, srgan := ganzoo.create("srgan", ndf=2, **shape))
    srgan.images_seen = 1000
    card = ganzoo.cards.model_card(srgan, "srgan-test")
    assert f"| started from | generator of `{untrained}` (not trained by ganzoo: no training record) |" in card
    assert "| images seen | 1,000 (1.0 kimg) |" in card
    # A resumed run keeps its own weights.
    resumed = ganzoo.create("srgan", ndf=2, **shape)
    resumed.images_seen = 16
    kept = {k: v.clone() for k, v in resumed.generator.state_dict().items()}
    InitFrom(str(srresnet)).on_fit_start(None, resumed)
    assert all(torch.equal(v, kept[k]) for k, v in resumed.generator.state_dict().items())
    assert resumed.started_from is None
    with pytest.raises(ValueError, match="does not fit"):
        InitFrom(str(srresnet)).on_fit_start(None, ganzoo.create("srgan", ndf=2, **{**shape, "num_features": 8}))
    with pytest.raises(ValueError, match="cannot copy 'discriminator'"):
        InitFrom(str(srresnet), ["discriminator"]).on_fit_start(None, ganzoo.create("srgan", ndf=2, **shape))


@pytest.mark.parametrize(
    ("hparams", "words"),
    [({"adversarial_weight": 0.0}, "| objective | content: pixel MSE; no discriminator (SRResNet) |"),
     ({"content_loss": "vgg54", "vgg_pretrained": False, "d_head": "pooled"},
      "| objective | content: MSE of VGG19 relu5_4 features / 12.75 (vgg54) + 0.001 x adversarial (non-saturating; "
      "discriminator with the pooled head) |")],
)  # fmt: skip
def test_a_trained_models_card_states_its_content_loss_and_adversarial_weight(hparams, words, tmp_path):
    gan = ganzoo.create("srgan", **{**ganzoo.registry.get_variant("srgan").tiny, **hparams})
    fit(gan, batches=1)
    assert words in (ganzoo.save_pretrained(gan, tmp_path / "m") / "README.md").read_text()


@pytest.mark.slow
def test_srresnet_trains_on_two_ranks_without_a_discriminator(tmp_path):
    # SRResNet has one DDP network (the generator) and one optimizer: both ranks end bit-identical, lr drop included.
    from tests.conftest import assert_same_optimizer_states
    from tests.test_distributed import run_workers

    hparams = {"adversarial_weight": 0.0, "lr_drop_kimg": 0.016, "ema_kimg": 0.01}
    ranks = run_workers(tmp_path, devices=2, batch=4, variant="srgan", hparams=hparams, batches=4)
    assert {r["strategy"] for r in ranks} == {"GANDDPStrategy"}
    assert not any(k.startswith("discriminator") for k in ranks[0]["state"])
    for key, value in ranks[0]["state"].items():
        torch.testing.assert_close(ranks[1]["state"][key], value, rtol=0, atol=0, msg=key)
    assert_same_optimizer_states(ranks[0]["optimizers"], ranks[1]["optimizers"])
    assert [r["images_seen"] for r in ranks] == [32, 32]


@pytest.mark.slow
def test_init_from_starts_every_rank_from_the_srresnet(tmp_path):
    # The networks are wrapped (rank 0's weights broadcast) before InitFrom runs: each rank must load the source
    # itself, or rank 1 would train on from its own random generator. Four steps of Adam at 1e-4 move each weight by
    # at most 4e-4, far less than a fresh initialisation differs from the source.
    from tests.test_distributed import REGULARISED, run_workers

    tiny = ganzoo.registry.get_variant("srgan").tiny
    torch.manual_seed(123)
    source = ganzoo.create("srgan", **{**tiny, "adversarial_weight": 0.0})
    ganzoo.save_pretrained(source, tmp_path / "srresnet")
    hparams = {**REGULARISED["srgan"], "lr": 1e-4}
    ranks = run_workers(tmp_path / "run", devices=2, batch=4, variant="srgan", hparams=hparams, batches=4,
                        extra=("--init-from", str(tmp_path / "srresnet")))  # fmt: skip
    for key, value in ranks[0]["state"].items():
        torch.testing.assert_close(ranks[1]["state"][key], value, rtol=0, atol=0, msg=key)
    for key, value in source.generator.named_parameters():  # (batch norm's running statistics move more)
        for rank in ranks:
            assert (rank["state"][f"generator.{key}"] - value).abs().max() < 1e-3, key
    # Every rank keeps the source's training record (rank 0's goes into the checkpoints and the card).
    record = {"source": str(tmp_path / "srresnet"), "parts": ["generator"], "images_seen": 0, "batches_seen": 0,
              "skipped_steps": 0, "train_seconds": 0.0, "hardware": []}  # fmt: skip
    assert [r["started_from"] for r in ranks] == [record, record]


@pytest.mark.parametrize("generator", ["srresnet", "rrdb"])
def test_both_generators_train_save_load_and_upscale_odd_sizes(generator, tmp_path):
    # The registry-wide contract for the RRDB generator too (the tiny config is SRResNet's): a fit step moves every
    # network, a saved folder loads to the same outputs, and a 37x53 image comes back 4x as large.
    L.seed_everything(0, verbose=False)
    shape = dict(num_blocks=1, growth=4) if generator == "rrdb" else dict(num_blocks=1)
    gan = ganzoo.create("srgan", generator=generator, image_size=16, scale=4, num_features=4, ndf=2, **shape)
    before = {k: v.clone() for k, v in gan.state_dict().items()}
    fit(gan, batches=1)
    for part in ("generator", "discriminator"):
        assert any(not torch.equal(before[k], v) for k, v in gan.state_dict().items() if k.startswith(part)), part
    x = torch.rand(1, 3, 37, 53) * 2 - 1
    out = gan.upscale(x)
    assert out.shape == (1, 3, 148, 212) and torch.isfinite(out).all()
    loaded = ganzoo.load(ganzoo.save_pretrained(gan, tmp_path / generator))
    torch.testing.assert_close(loaded.upscale(x), out, rtol=0, atol=0)
