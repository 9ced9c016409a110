"""The throughput benchmark compares like with like: the hand-written plain loops in benchmarks/throughput.py train
exactly what ganzoo's loop trains (same steps, losses, schedules, pools and EMA), so their ratio measures ganzoo's
overhead and nothing else. Checked for the translators, whose only randomness (dropout, the history pools) comes
from the global generator, and for ProGAN at its final stage with its latents drawn from the global generator too
(ganzoo's latent variants draw them from a seeded stream of their own, ``GAN.training_latents``, which the plain
loops replace by ``torch.randn``)."""

import importlib.util
import sys

import pytest
import torch

from ganzoo import registry
from tests.conftest import REPO


def throughput_module():
    spec = importlib.util.spec_from_file_location("throughput", REPO / "benchmarks" / "throughput.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["throughput"] = module
    spec.loader.exec_module(module)
    return module


THROUGHPUT = throughput_module()
# Settings that switch on what each recipe exercises: schedules, decays, pools, EMAs, penalties.
EXTRA = {
    "pix2pix": dict(lr_constant_kimg=0.004, lr_decay_kimg=0.008, ema_kimg=0.01),
    "cyclegan": dict(lr_constant_kimg=0.004, lr_decay_kimg=0.008, ema_kimg=0.01, lambda_identity=0.5, pool_size=3),
    "progan": dict(drift_weight=0.5),  # a drift weight large enough to show
    "srgan": dict(lr_drop_kimg=0.008, ema_kimg=0.01, content_loss="vgg22", vgg_pretrained=False),
    "srresnet": dict(lr_drop_kimg=0.008, adversarial_weight=0.0),  # the srgan variant without a discriminator
}


@pytest.mark.parametrize("case", ["pix2pix", "cyclegan", "progan", "srgan", "srresnet"])
def test_the_plain_loop_trains_exactly_what_ganzoo_trains(case, monkeypatch):
    variant = "srgan" if case == "srresnet" else case
    info = registry.get_variant(variant)
    hparams = {**info.tiny, **EXTRA.get(case, {})}
    torch.manual_seed(0)
    base = THROUGHPUT.at_final_stage(registry.create(variant, **hparams))
    if variant == "progan":
        monkeypatch.setattr(type(base), "training_latents", lambda self, n: torch.randn(n, self.hparams.latent_dim))
    size = int(base.hparams.image_size)
    recipe = THROUGHPUT.Recipe("test", variant, hparams, batch_size=4, image_size=size)
    batches = THROUGHPUT.make_batches(base, recipe, 6, "cpu")
    torch.manual_seed(1)
    _, plain = THROUGHPUT.plain_run(base, batches, 1, "cpu")
    torch.manual_seed(1)
    _, ours = THROUGHPUT.ganzoo_run(base, batches, 1, "cpu")
    for (name, a), (_, b) in zip(plain.state_dict().items(), ours.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=lambda m, name=name: f"{variant} {name}: {m}")
