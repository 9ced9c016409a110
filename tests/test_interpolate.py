"""Latent walks: gan.interpolate and ganzoo interpolate, for every generative variant."""

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

import ganzoo
from ganzoo import cli
from tests.conftest import LATENT_VARIANTS
from tests.test_variants import tiny


@pytest.mark.parametrize("variant", LATENT_VARIANTS)
def test_a_walk_passes_through_each_seeds_sample_and_loops(variant):
    gan = tiny(variant)
    n = 24
    frames = gan.interpolate([3, 5, 7], frames=n)
    assert frames.shape[0] == 3 * n + 1 and torch.isfinite(frames).all()
    torch.testing.assert_close(frames[-1], frames[0], rtol=0, atol=0)
    options = {"labels": 0} if gan.num_classes else {}
    for i, seed in enumerate([3, 5, 7]):  # every n-th frame is a seed's own sample
        torch.testing.assert_close(frames[n * i], gan.sample(1, seed=seed, **options)[0], rtol=0, atol=1e-5)
    # Smooth: within each leg, neighbouring frames differ far less than the leg's two seeds' samples do.
    step = (frames[1:] - frames[:-1]).abs().mean(dim=(1, 2, 3))
    for leg in range(3):
        ends = (frames[n * leg + n] - frames[n * leg]).abs().mean()
        assert step[n * leg : n * leg + n].max() < 0.25 * ends and ends > 0, leg


def test_noise_walks_follow_the_great_circle():
    # slerp keeps the norm of two latents of equal norm all the way, where a straight line would sag to 0.71 of it
    # at the middle of a right angle; the middle lies at equal angles from both ends.
    gan = tiny("dcgan")
    a, b = torch.zeros(gan.hparams.latent_dim), torch.zeros(gan.hparams.latent_dim)
    a[0], b[1] = 2.0, 2.0
    path = gan.walk_step(a, b, torch.linspace(0, 1, 9, dtype=torch.float64))
    torch.testing.assert_close(path.norm(dim=1), torch.full((9,), 2.0))
    torch.testing.assert_close(path[4][:2], torch.tensor([2**0.5, 2**0.5]))
    torch.testing.assert_close(path[0], a)
    torch.testing.assert_close(path[-1], b)


def test_a_conditional_walk_keeps_its_class():
    # The shipped cGAN: an untrained tiny one draws the same image for every class, which would hide a lost label.
    gan = ganzoo.load("cgan-mnist")
    last = gan.num_classes - 1
    frames = gan.interpolate([1, 2], frames=3, labels=last)
    torch.testing.assert_close(frames[3], gan.sample(1, seed=2, labels=last)[0], rtol=0, atol=1e-5)
    assert (frames[3] - gan.sample(1, seed=2, labels=0)[0]).abs().max() > 0.5
    with pytest.raises(ValueError, match="unconditional"):
        tiny("dcgan").interpolate([1, 2], labels=0)
    with pytest.raises(ValueError, match="two seeds"):
        tiny("cgan").interpolate([1], frames=3)


def test_stylegan2_walks_straight_lines_in_w():
    gan = tiny("stylegan2")
    frames = gan.interpolate([1, 2], frames=2, truncation_psi=0.5)
    net = gan.sampling_generator.eval()
    z = torch.cat([gan.sample_latents(1, s) for s in (1, 2)])
    ws = net.mapping(z, None, truncation_psi=0.5)
    with torch.no_grad():
        middle = net.synthesis(ws.mean(0, keepdim=True), noise_mode="const")[0].clamp(-1, 1)
    torch.testing.assert_close(frames[1], middle, rtol=0, atol=1e-5)
    torch.testing.assert_close(frames[0], gan.sample(1, seed=1, truncation_psi=0.5)[0], rtol=0, atol=1e-5)


def read_gif(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.stack([np.asarray(f.convert("L"), dtype=np.float64) for f in ImageSequence.Iterator(im)])


def test_cli_writes_a_looping_gif_of_a_shipped_model(tmp_path, capsys):
    out = tmp_path / "walk.gif"
    assert cli.main(["interpolate", "dcgan-mnist", "--seeds", "1,2,3", "--frames", "8", "-o", str(out)]) == 0
    assert "25-frame walk of dcgan-mnist" in capsys.readouterr().out
    frames = read_gif(out)
    assert frames.shape == (25, 32, 32)
    with Image.open(out) as im:
        assert im.info.get("loop") == 0  # loops forever
    assert np.array_equal(frames[0], frames[-1])
    expected = ganzoo.gan.to_uint8(ganzoo.load("dcgan-mnist").sample(1, seed=2))[0, 0].double().numpy()
    assert np.abs(frames[8] - expected).max() <= 1
    steps = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2))
    assert steps.mean() < 0.2 * np.abs(frames[8] - frames[0]).mean()
    assert cli.main(["interpolate", "dcgan-mnist", "--seeds", "1", "-o", str(out)]) == 1
    assert "at least two seeds" in capsys.readouterr().err
    assert cli.main(["interpolate", "dcgan-mnist", "--label", "3", "-o", str(out)]) == 1
    assert "unconditional" in capsys.readouterr().err
    assert cli.main(["interpolate", "dcgan-mnist", "-o", str(tmp_path / "walk.png")]) == 1
    assert ".gif or an .mp4" in capsys.readouterr().err


def test_cli_writes_an_mp4_with_the_gifs_frames(tmp_path, capsys):
    import imageio_ffmpeg

    out = tmp_path / "walk.mp4"
    args = ["interpolate", "dcgan-mnist", "--seeds", "4,5", "--frames", "5", "--scale", "3", "--fps", "10", "-o"]
    assert cli.main([*args, str(out)]) == 0
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    frames = [np.frombuffer(f, np.uint8).reshape(*meta["size"][::-1], 3) for f in reader]
    assert len(frames) == 11 and meta["size"] == (96, 96) and meta["fps"] == 10
    gif = tmp_path / "walk.gif"
    assert cli.main([*args, str(gif)]) == 0
    # The video's frames are the GIF's, up to the codec's loss.
    assert np.abs(np.stack(frames)[..., 1].astype(float) - read_gif(gif)).mean() < 8
