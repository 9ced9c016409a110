"""WGAN and WGAN-GP: the gradient penalty against its analytic value, clipping, the n_critic schedule on the
module's own clock, the logged Wasserstein estimate, and exact resume part-way through a critic round."""

import copy
import csv

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

import ganzoo
from ganzoo import losses
from ganzoo.callbacks import GANCheckpoint, StopAt
from ganzoo.data import Synthetic
from tests.test_training import assert_same, snapshot

TINY = dict(latent_dim=8, image_size=8, image_channels=1, base_channels=4)


def make(**overrides) -> ganzoo.gan.GAN:
    L.seed_everything(0, verbose=False)
    return ganzoo.create("wgan", **{**TINY, **overrides})


def data() -> Synthetic:
    return Synthetic(num_images=64, image_size=8, batch_size=8)


def trainer(tmp_path, callbacks=(), **kwargs) -> L.Trainer:
    kwargs = {"logger": False, **kwargs}
    return L.Trainer(accelerator="cpu", max_epochs=20, enable_progress_bar=False, enable_model_summary=False,
                     default_root_dir=tmp_path, callbacks=list(callbacks), **kwargs)  # fmt: skip


def test_gradient_penalty_of_a_linear_critic_is_its_slope_error():
    """D(x) = <w, x> has gradient w everywhere, so GP = (||w|| - 1)^2 whatever the interpolates, and
    dGP/dw = 2 (||w|| - 1) w / ||w||."""
    torch.manual_seed(0)
    w = (torch.randn(3, 4, 4) * 0.7).requires_grad_(True)
    real, fake = torch.randn(16, 3, 4, 4), torch.randn(16, 3, 4, 4)
    gp = losses.gradient_penalty(lambda x: (x * w).flatten(1).sum(1), real, fake)
    norm = w.detach().norm()
    torch.testing.assert_close(gp, (norm - 1) ** 2)
    gp.backward()
    torch.testing.assert_close(w.grad, 2 * (norm - 1) * w.detach() / norm)
    # A unit-slope critic is not penalised at all.
    unit = w.detach() / norm
    assert losses.gradient_penalty(lambda x: (x * unit).flatten(1).sum(1), real, fake) < 1e-12


def test_gradient_penalty_is_taken_at_the_interpolates():
    """D(x) = ||x||^2 / 2 has gradient x: GP = mean_i (||eps_i x_i + (1 - eps_i) y_i|| - 1)^2."""
    real, fake = torch.randn(5, 2, 3, 3), torch.randn(5, 2, 3, 3)
    eps = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])
    gp = losses.gradient_penalty(lambda x: x.square().flatten(1).sum(1) / 2, real, fake, eps=eps)
    xhat = eps.view(-1, 1, 1, 1) * real + (1 - eps.view(-1, 1, 1, 1)) * fake
    torch.testing.assert_close(gp, (xhat.flatten(1).norm(dim=1) - 1).square().mean())


def test_wasserstein_and_hinge_losses():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-0.5, 3.0])
    assert losses.d_wasserstein(real, fake) == pytest.approx(1.25 - 1.25)
    assert losses.g_wasserstein(fake) == pytest.approx(-1.25)
    # max(0, 1 - D(x)): 0 and 0.5; max(0, 1 + D(G(z))): 0.5 and 4.
    assert losses.d_hinge(real, fake) == pytest.approx(0.25 + 2.25)


def test_options_and_their_optimizers():
    gp = make()
    assert (gp.hparams.lr, gp.hparams.critic_norm) == (1e-4, "none")
    _, opt_d = gp.configure_optimizers()
    assert isinstance(opt_d, torch.optim.Adam) and opt_d.defaults["betas"] == (0.0, 0.9)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in gp.discriminator.modules())
    clip = make(lipschitz="clip")
    assert (clip.hparams.lr, clip.hparams.critic_norm) == (5e-5, "batch")
    assert all(isinstance(o, torch.optim.RMSprop) for o in clip.configure_optimizers())
    with pytest.raises(ValueError, match="batch norm mixes the samples.*critic_norm='layer'"):
        make(critic_norm="batch")
    with pytest.raises(ValueError, match="'gp' .* or 'clip'"):
        make(lipschitz="spectral")
    layer_normed = make(critic_norm="layer", image_size=16).discriminator
    assert any(isinstance(m, torch.nn.GroupNorm) for m in layer_normed.modules())


def test_weight_clipping_bounds_every_critic_parameter(tmp_path):
    gan = make(lipschitz="clip", clip_value=0.01, lr=0.05, n_critic=2)
    trainer(tmp_path, [StopAt(batches=3)]).fit(gan, data())
    params = torch.cat([p.flatten() for p in gan.discriminator.parameters()])
    assert params.abs().max() <= 0.01
    assert (params.abs() == 0.01).float().mean() > 0.1  # a large step really was clipped


class Recorder(L.Callback):
    """Before each batch: the batch, the networks and the latent stream, to replay the step by hand."""

    def __init__(self):
        self.steps = []

    def on_train_batch_start(self, trainer, gan, batch, batch_idx):
        self.steps.append((batch, copy.deepcopy(gan.generator), copy.deepcopy(gan.discriminator),
                           gan._latent_rng.get_state() if gan._latent_rng is not None else None))  # fmt: skip


def test_n_critic_schedule_and_the_logged_wasserstein_estimate(tmp_path):
    """n_critic = 3 over 7 batches: 7 critic steps, generator steps after batches 3 and 6, and each batch's
    logged estimate equals E[D(x)] - E[D(G(z))] replayed from the state before it."""
    gan, recorder = make(n_critic=3), Recorder()
    tr = trainer(tmp_path, [StopAt(batches=7), recorder], logger=CSVLogger(tmp_path), log_every_n_steps=1)
    tr.fit(gan, data())
    opt_g, opt_d = tr.optimizers
    assert gan.batches_seen == 7 and gan.generator_steps == 2
    assert {int(s["step"]) for s in opt_d.state_dict()["state"].values()} == {7}
    assert {int(s["step"]) for s in opt_g.state_dict()["state"].values()} == {2}

    with open(next(tmp_path.rglob("metrics.csv"))) as f:
        rows = list(csv.DictReader(f))
    by_step = {}
    for r in rows:
        by_step.setdefault(int(r["step"]), {}).update({k: float(v) for k, v in r.items() if v and k != "step"})
    assert sorted(by_step) == list(range(7))  # the logger's x axis is the batch, not the optimizer-step count
    assert [b for b in range(7) if "loss/g" in by_step[b]] == [2, 5]
    for b, (batch, G, D, rng) in enumerate(recorder.steps):
        real = batch[0]
        state = torch.Generator()
        if rng is None:
            state.manual_seed(torch.initial_seed() + 1)
        else:
            state.set_state(rng)
        with torch.no_grad():
            fake = G(gan.latents(len(real), generator=state))
            expected = D(real).mean() - D(fake).mean()
        assert by_step[b]["score/wasserstein"] == pytest.approx(float(expected), rel=1e-5, abs=1e-7)
        assert by_step[b]["loss/gp"] >= 0


def test_resume_part_way_through_a_critic_round_is_exact(tmp_path):
    """Stopped after batch 4 (one critic step into the second round of 3), resumed to 8 == 8 straight."""
    gan = make(n_critic=3, lr=1e-3)
    tr = trainer(tmp_path / "straight", [StopAt(batches=8)])
    tr.fit(gan, data())
    straight = snapshot(gan, tr)

    first = make(n_critic=3, lr=1e-3)
    ckpt = tmp_path / "ckpt"
    trainer(tmp_path / "a", [StopAt(batches=4), GANCheckpoint(dirpath=ckpt, save_last=True)]).fit(first, data())
    assert first.generator_steps == 1
    resumed = make(n_critic=3, lr=1e-3)
    tr = trainer(tmp_path / "b", [StopAt(batches=8), GANCheckpoint(dirpath=ckpt, save_last=True)])
    tr.fit(resumed, data(), ckpt_path=ckpt / "last.ckpt")
    assert resumed.generator_steps == 2
    assert_same(straight, snapshot(resumed, tr))


def test_the_generator_loss_is_logged_as_its_mean_over_each_logging_window(tmp_path, monkeypatch):
    """n_critic = 2 and log_every_n_steps = 4: generator steps after batches 1, 3, 5, ...; the loggers get loss/g at
    batches 3, 7, 11 only, each the mean of that window's two generator losses (kept on the device until then)."""
    from ganzoo import losses

    g_losses = []
    real = losses.g_wasserstein

    def recorded(scores):
        loss = real(scores)
        g_losses.append(loss.detach())
        return loss

    monkeypatch.setattr(losses, "g_wasserstein", recorded)
    gan = make(n_critic=2)
    trainer(tmp_path, [StopAt(batches=12)], logger=CSVLogger(tmp_path), log_every_n_steps=4).fit(gan, data())
    with open(next(tmp_path.rglob("metrics.csv"))) as f:
        logged = {int(r["step"]): float(r["loss/g"]) for r in csv.DictReader(f) if r.get("loss/g")}
    assert len(g_losses) == 6 and sorted(logged) == [3, 7, 11]
    for i, step in enumerate(sorted(logged)):
        assert logged[step] == pytest.approx(float(g_losses[2 * i] + g_losses[2 * i + 1]) / 2, rel=1e-6)
