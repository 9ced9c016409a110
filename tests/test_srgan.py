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
    data = SuperResolution(root=str(data_root), scale=4, crop_size=48).dataset("train")
    assert len(data) == 100 + 1096  # BSD100's HR images and the maps set's aerial photos; not Set5 or Set14
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
