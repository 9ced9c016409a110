"""Every registered variant, at its tiny config: the contract all GANs in the zoo keep."""

import lightning as L
import pytest
import torch

import ganzoo
from ganzoo import registry
from ganzoo.data import Synthetic
from tests.conftest import LATENT_VARIANTS, VARIANTS


def tiny(variant: str) -> ganzoo.gan.GAN:
    torch.manual_seed(0)
    return registry.create(variant, **registry.get_variant(variant).tiny)


def datamodule_for(gan) -> Synthetic:
    return Synthetic.matching(gan, num_images=32, batch_size=8)


def outputs(gan, n: int, seed: int) -> torch.Tensor:
    """What the model makes for ``seed``: samples, or the translations of fixed inputs."""
    if gan.task in registry.IMAGE_TASKS:
        return gan.translate(gan.example_inputs(n, seed))
    return gan.sample(n, seed=seed)


def fit(gan, batches: int = 1, max_epochs: int = 1, datamodule=None, **trainer_kwargs) -> L.Trainer:
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=max_epochs,
        limit_train_batches=batches,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **trainer_kwargs,
    )
    trainer.fit(gan, datamodule or datamodule_for(gan))
    return trainer


def critic(gan, images):
    """The discriminator's logits; a conditional one is asked about classes 0, 1, 2, ... (one-hot, as NVIDIA's)."""
    if not gan.num_classes:
        return gan.discriminator(images)
    return gan.discriminator(images, gan.one_hot(torch.arange(len(images)) % gan.num_classes, len(images)))


@pytest.mark.parametrize("variant", VARIANTS)
def test_preview_shape_range_and_finite(variant):
    # preview: what save_pretrained, the card and SampleGrid show, whatever the task (input | output pairs of a
    # translator)
    gan = tiny(variant)
    hp = gan.hparams
    images, _ = gan.preview(5, seed=0)
    channels = hp.get("image_channels") or hp.get("output_channels") or hp.b_channels
    # translation: input | output; super-resolution without training crops: LR | bicubic | output
    per_input = {"translation": 2, "super-resolution": 3}.get(gan.task, 1)
    assert images.shape == (5 * per_input, channels, hp.image_size, hp.image_size)
    assert images.dtype == torch.float32
    assert torch.isfinite(images).all()
    assert images.min() >= -1 and images.max() <= 1
    assert images.std() > 0, "a fresh generator should not output a constant"


@pytest.mark.parametrize("variant", LATENT_VARIANTS)
def test_same_seed_same_images(variant):
    gan = tiny(variant)
    torch.testing.assert_close(gan.sample(4, seed=3), gan.sample(4, seed=3), rtol=0, atol=0)
    assert not torch.equal(gan.sample(4, seed=3), gan.sample(4, seed=4))
    # Batching does not change what a seed means.
    torch.testing.assert_close(gan.sample(4, seed=3, batch_size=1), gan.sample(4, seed=3), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", LATENT_VARIANTS)
def test_discriminator_returns_one_logit_per_image(variant):
    gan = tiny(variant)
    images = gan.sample(4, seed=0)
    logits = critic(gan, images)
    assert logits.shape in ((4,), (4, 1))  # StyleGAN2 keeps NVIDIA's [N, 1]
    assert torch.isfinite(logits).all()


def parameters(gan) -> dict[str, torch.Tensor]:
    """Every parameter of every network the variant trains (``ddp_networks``: G and D, or CycleGAN's four)."""
    return {f"{net}.{k}": p for net in gan.ddp_networks for k, p in getattr(gan, net).named_parameters()}


@pytest.mark.parametrize("variant", LATENT_VARIANTS)
def test_gradients_reach_every_parameter_of_every_network(variant):
    gan = tiny(variant).train()
    z = gan.latents(4)
    loss = critic(gan, gan.generate(gan.generator, z)).mean()
    loss.backward()
    params = parameters(gan)
    assert {k.split(".", 1)[0] for k in params} == set(gan.ddp_networks)
    for name, p in params.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {name}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_one_fit_step_changes_every_parameter_of_every_network(variant):
    gan = tiny(variant)
    before = {k: p.detach().clone() for k, p in parameters(gan).items()}
    ema_before = {k: p.detach().clone() for k, p in gan.generator_ema.named_parameters()} if gan.generator_ema else {}
    fit(gan, batches=1)
    unchanged = sorted(k for k, p in parameters(gan).items() if torch.equal(before[k], p))
    assert not unchanged, f"not updated by one fit step: {unchanged}"
    assert gan.batches_seen == 1 and gan.images_seen == 8
    if gan.generator_ema is not None:
        unchanged = sorted(k for k, p in gan.generator_ema.named_parameters() if torch.equal(ema_before[k], p))
        assert not unchanged, f"the EMA generator did not move: {unchanged}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_losses_logged_per_phase(variant):
    gan = tiny(variant)
    trainer = fit(gan, batches=2)
    assert {"loss/d", "loss/g"} <= set(trainer.callback_metrics)
    assert all(torch.isfinite(trainer.callback_metrics[k]) for k in ("loss/d", "loss/g"))


@pytest.mark.parametrize("variant", VARIANTS)
def test_save_load_identical_samples(variant, tmp_path):
    gan = tiny(variant)
    fit(gan, batches=2)
    folder = ganzoo.save_pretrained(gan, tmp_path / "model")
    loaded = ganzoo.load(folder)
    assert type(loaded) is type(gan) and not loaded.training
    torch.testing.assert_close(outputs(loaded, 6, seed=1), outputs(gan, 6, seed=1), rtol=0, atol=0)
    assert loaded.images_seen == gan.images_seen == 16
    assert loaded.batches_seen == 2
    for k, v in gan.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k


def test_ema_half_life():
    """After ema_kimg thousand images, an old EMA weight keeps exactly half its influence."""
    gan = tiny("dcgan")
    gan.ema_kimg = 0.1  # 100 images
    p_ema = next(gan.generator_ema.parameters())
    p = next(gan.generator.parameters())
    with torch.no_grad():
        p_ema.fill_(1.0)
        p.fill_(0.0)
    for _ in range(4):
        gan.update_ema(25)
    torch.testing.assert_close(p_ema, torch.full_like(p_ema, 0.5))


def test_ema_rampup_shortens_the_half_life_early_in_training():
    """NVIDIA's ramp-up: half-life min(ema_kimg, ema_rampup * images seen before the step)."""
    gan = registry.create("dcgan", **{**registry.get_variant("dcgan").tiny, "ema_kimg": 10.0, "ema_rampup": 0.05})
    p_ema, p = next(gan.generator_ema.parameters()), next(gan.generator.parameters())

    def step(images_before: int, batch: int) -> float:
        with torch.no_grad():
            p_ema.fill_(1.0)
            p.fill_(0.0)
        gan.images_seen = images_before + batch  # update_ema runs after the clock moved
        gan.update_ema(batch)
        return float(p_ema.flatten()[0])

    assert step(0, 50) == 0.0  # no history yet: the average is the generator
    assert step(1000, 50) == pytest.approx(0.5)  # half-life 0.05 * 1000 = 50 images
    assert step(10**6, 50) == pytest.approx(0.5 ** (50 / 10_000))  # ramped up: the 10 kimg half-life


def test_wgan_steps_its_ema_with_the_generator_not_every_critic_batch(monkeypatch):
    gan = registry.create("wgan", **{**registry.get_variant("wgan").tiny, "n_critic": 3})
    calls = []
    real = gan.update_ema
    monkeypatch.setattr(gan, "update_ema", lambda images: calls.append((gan.batches_seen, images)) or real(images))
    fit(gan, batches=4, max_epochs=2)  # 8 batches
    assert gan.generator_steps == 2 and calls == [(3, 8), (6, 8)]  # after the generator steps of batches 3 and 6


def test_recompute_ema_batchnorm_measures_the_ema_generators_own_statistics():
    gan = tiny("dcgan")
    fit(gan, batches=2)
    gan.eval()
    norms = [m for m in gan.generator_ema.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    inputs = {m: [] for m in norms}
    hooks = [m.register_forward_hook(lambda m, x, y: inputs[m].append(x[0].detach())) for m in norms]
    gan.recompute_ema_batchnorm(num_images=48, batch_size=16, seed=1)
    for h in hooks:
        h.remove()
    for m in norms:
        # The EMA generator's own activations, 3 batches of 16: the average of the batches' means and (unbiased)
        # variances.
        batches = inputs[m]
        assert len(batches) == 3
        mean = torch.stack([x.mean(dim=(0, 2, 3)) for x in batches]).mean(0)
        var = torch.stack([x.var(dim=(0, 2, 3)) for x in batches]).mean(0)
        torch.testing.assert_close(m.running_mean, mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(m.running_var, var, rtol=1e-5, atol=1e-6)
        assert m.momentum == 0.1
    assert not gan.generator_ema.training


def test_ema_off_samples_from_generator():
    gan = registry.create("dcgan", **{**registry.get_variant("dcgan").tiny, "ema_kimg": None})
    assert gan.generator_ema is None and gan.sampling_generator is gan.generator
    assert "generator_ema.net.0.weight" not in gan.state_dict()


def test_generator_learns_a_tiny_problem():
    """64 steps on synthetic discs pull the generator's mean image towards the data's."""
    torch.manual_seed(0)
    gan = registry.create("dcgan", latent_dim=8, image_size=16, image_channels=1, base_channels=8, lr=1e-3)
    dm = Synthetic(num_images=512, image_channels=1, image_size=16, batch_size=32)
    dm.setup()
    real_mean = torch.stack([dm.dataset()[i][0] for i in range(512)]).mean(0)

    def distance() -> float:
        return float((gan.sample(512, seed=0).mean(0) - real_mean).pow(2).mean().sqrt())

    before = distance()
    fit(gan, batches=16, max_epochs=4, datamodule=dm)
    assert gan.batches_seen == 64
    assert distance() < 0.85 * before
