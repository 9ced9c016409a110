"""Every registered variant, at its tiny config: the contract all GANs in the zoo keep."""

import lightning as L
import pytest
import torch

import ganzoo
from ganzoo import registry
from ganzoo.data import Synthetic
from tests.conftest import VARIANTS


def tiny(variant: str) -> ganzoo.gan.GAN:
    torch.manual_seed(0)
    return registry.create(variant, **registry.get_variant(variant).tiny)


def datamodule_for(gan) -> Synthetic:
    hp = gan.hparams
    return Synthetic(num_images=32, image_channels=hp.image_channels, image_size=hp.image_size, batch_size=8)


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
def test_sample_shape_range_and_finite(variant):
    gan = tiny(variant)
    hp = gan.hparams
    images = gan.sample(5, seed=0)
    assert images.shape == (5, hp.image_channels, hp.image_size, hp.image_size)
    assert images.dtype == torch.float32
    assert torch.isfinite(images).all()
    assert images.min() >= -1 and images.max() <= 1
    assert images.std() > 0, "a fresh generator should not output a constant"


@pytest.mark.parametrize("variant", VARIANTS)
def test_same_seed_same_images(variant):
    gan = tiny(variant)
    torch.testing.assert_close(gan.sample(4, seed=3), gan.sample(4, seed=3), rtol=0, atol=0)
    assert not torch.equal(gan.sample(4, seed=3), gan.sample(4, seed=4))
    # Batching does not change what a seed means.
    torch.testing.assert_close(gan.sample(4, seed=3, batch_size=1), gan.sample(4, seed=3), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS)
def test_discriminator_returns_one_logit_per_image(variant):
    gan = tiny(variant)
    images = gan.sample(4, seed=0)
    logits = critic(gan, images)
    assert logits.shape in ((4,), (4, 1))  # StyleGAN2 keeps NVIDIA's [N, 1]
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("variant", VARIANTS)
def test_gradients_reach_every_generator_parameter(variant):
    gan = tiny(variant).train()
    z = gan.latents(4)
    loss = critic(gan, gan.generate(gan.generator, z)).mean()
    loss.backward()
    for name, p in gan.generator.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches generator.{name}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_one_fit_step_changes_generator_and_discriminator(variant):
    gan = tiny(variant)
    before = {k: v.clone() for k, v in gan.state_dict().items()}
    fit(gan, batches=1)
    after = gan.state_dict()
    for part in ("generator.", "discriminator."):
        changed = [k for k in before if k.startswith(part) and not torch.equal(before[k], after[k])]
        weights = [k for k in before if k.startswith(part) and k.endswith("weight")]
        assert set(weights) <= set(changed), f"{part} weights unchanged: {sorted(set(weights) - set(changed))}"
    assert gan.batches_seen == 1 and gan.images_seen == 8
    if gan.generator_ema is not None:
        ema = [k for k in before if k.startswith("generator_ema.") and k.endswith("weight")]
        assert all(not torch.equal(before[k], after[k]) for k in ema), "the EMA generator did not move"


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
    torch.testing.assert_close(loaded.sample(6, seed=1), gan.sample(6, seed=1), rtol=0, atol=0)
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
