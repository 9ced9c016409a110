"""WGAN: Arjovsky, Chintala and Bottou, "Wasserstein GAN", ICML 2017, arXiv:1701.07875; and WGAN-GP: Gulrajani,
Ahmed, Arjovsky, Dumoulin and Courville, "Improved Training of Wasserstein GANs", NeurIPS 2017, arXiv:1704.00028.

The critic ``D`` estimates the Wasserstein-1 distance by the Kantorovich-Rubinstein duality,

    W(P_r, P_g) = sup_{||D||_L <= 1} E_{x ~ P_r}[D(x)] - E_{x ~ P_g}[D(x)],

so it has no sigmoid and its loss is ``E[D(G(z))] - E[D(x)]``; the generator minimises ``-E[D(G(z))]``. The critic
is trained ``n_critic`` times per generator step, and kept (roughly) 1-Lipschitz in one of two ways:

- ``lipschitz="clip"`` (WGAN): every critic parameter is clipped to ``[-c, c]`` after each step, ``c = 0.01``,
  with RMSprop at lr 5e-5 (momentum-based optimizers were unstable in the paper);
- ``lipschitz="gp"`` (WGAN-GP): the penalty ``lambda E[(||grad D(xhat)||_2 - 1)^2]`` on random interpolates of
  real and generated images (:func:`ganzoo.losses.gradient_penalty`), lambda 10, with Adam at lr 1e-4 and betas
  (0, 0.9). The penalty is per sample, so the critic has no batch norm (layer norm or none instead).

The networks are DCGAN's (``ganzoo.models.dcgan``): a batch-normed generator and a convolutional critic, the
setting of WGAN-GP's CIFAR-10 DCGAN experiments. Reference implementations studied: martinarjovsky/WassersteinGAN
and igul222/improved_wgan_training (both BSD-3-Clause or MIT).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ganzoo import losses
from ganzoo.gan import LatentGAN
from ganzoo.models.dcgan import Discriminator, Generator, init_weights
from ganzoo.registry import Pretrained, register_gan, register_pretrained

LIPSCHITZ = ("gp", "clip")


@register_gan(
    "wgan",
    tiny=dict(latent_dim=8, image_size=8, image_channels=1, base_channels=4, n_critic=1, ema_kimg=0.01),
)
class WGAN(LatentGAN):
    """WGAN (weight clipping) and WGAN-GP (gradient penalty) with DCGAN's networks.

    One training batch is one critic step; every ``n_critic``-th batch is followed by a generator step, counted by
    the module's own clock (``batches_seen``), so the schedule survives resuming and is the same on every process.
    Logged per batch: ``loss/d`` (the critic's whole loss), ``score/wasserstein`` (the estimate
    ``E[D(x)] - E[D(G(z))]`` on the batch before the critic's step), ``loss/gp`` with the penalty, and ``loss/g``, the
    mean over the logging window's generator steps.

    Args:
        latent_dim: size of ``z ~ N(0, I)``.
        image_size: output side, ``4 * 2**k`` (32 for CIFAR-10, WGAN-GP's setting).
        image_channels: 1 or 3.
        base_channels: channels of the generator's last hidden layer and the critic's first.
        lipschitz: ``"gp"`` (gradient penalty) or ``"clip"`` (weight clipping).
        n_critic: critic steps per generator step (5 in both papers).
        gp_weight: lambda, the weight of the gradient penalty.
        clip_value: ``c``, the bound of the critic's parameters under clipping.
        lr: learning rate of both networks; default 1e-4 (Adam) with ``"gp"``, 5e-5 (RMSprop) with ``"clip"``.
        betas: Adam's betas under ``"gp"``.
        critic_norm: ``"none"`` (default under ``"gp"``), ``"layer"``, or ``"batch"`` (default under ``"clip"``;
            refused under ``"gp"``, where a batch statistic would couple the per-sample penalty across the batch).
        ema_kimg: half-life of the generator EMA in thousands of images; ``None`` for none.
        ema_rampup: NVIDIA's EMA ramp-up: the half-life is at most this fraction of the images seen so far.
    """

    def __init__(
        self,
        latent_dim: int = 128,
        image_size: int = 32,
        image_channels: int = 3,
        base_channels: int = 64,
        lipschitz: str = "gp",
        n_critic: int = 5,
        gp_weight: float = 10.0,
        clip_value: float = 0.01,
        lr: float | None = None,
        betas: tuple[float, float] = (0.0, 0.9),
        critic_norm: str | None = None,
        ema_kimg: float | None = None,
        ema_rampup: float | None = None,
    ) -> None:
        super().__init__()
        if lipschitz not in LIPSCHITZ:
            raise ValueError(f"lipschitz must be 'gp' (gradient penalty) or 'clip' (weight clipping): {lipschitz!r}")
        if n_critic < 1:
            raise ValueError(f"n_critic must be at least 1, got {n_critic}")
        critic_norm = critic_norm or ("none" if lipschitz == "gp" else "batch")
        if lipschitz == "gp" and critic_norm == "batch":
            raise ValueError(
                "the gradient penalty is per sample and batch norm mixes the samples of a batch: "
                "use critic_norm='layer' or 'none' with lipschitz='gp'"
            )
        self.save_hyperparameters()
        self.hparams.critic_norm = critic_norm
        self.hparams.lr = lr or (1e-4 if lipschitz == "gp" else 5e-5)
        self.generator = Generator(latent_dim, image_size, image_channels, base_channels, "batch")
        self.discriminator = Discriminator(image_size, image_channels, base_channels, critic_norm)
        self.generator.apply(init_weights)
        self.discriminator.apply(init_weights)
        self.init_ema(ema_kimg, ema_rampup)

    def latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.hparams.latent_dim, generator=generator)

    @property
    def generator_steps(self) -> int:
        """Generator steps done: one after every ``n_critic``-th batch (critic step)."""
        return self.batches_seen // self.hparams.n_critic

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        real, _ = batch
        hp = self.hparams
        opt_g, opt_d = self.optimizers()
        G, D = self.net("generator"), self.net("discriminator")
        logs = {}
        with self.toggled_optimizer(opt_d):
            with torch.no_grad():
                fake = G(self.training_latents(len(real)))
            real_scores, fake_scores = D(real), D(fake)
            d_loss = losses.d_wasserstein(real_scores, fake_scores)
            logs["score/wasserstein"] = -d_loss.detach()
            if hp.lipschitz == "gp":
                logs["loss/gp"] = losses.gradient_penalty(D, real, fake)
                d_loss = d_loss + hp.gp_weight * logs["loss/gp"]
            self.update(opt_d, d_loss)
            if hp.lipschitz == "clip":
                with torch.no_grad():
                    for p in self.discriminator.parameters():
                        p.clamp_(-hp.clip_value, hp.clip_value)
        logs["loss/d"] = d_loss
        self.log_dict({k: v.detach() for k, v in logs.items()}, prog_bar=True)
        if (self.batches_seen + 1) % hp.n_critic == 0:  # batches_seen counts the batches before this one
            with self.toggled_optimizer(opt_g):
                g_loss = losses.g_wasserstein(D(G(self.training_latents(len(real)))))
                self.update(opt_g, g_loss)
            # To the progress bar, and to the loggers for the batches that have it (self.log would repeat it between).
            self.log("loss/g", g_loss.detach(), prog_bar=True, logger=False)
            self.log_sparse({"loss/g": g_loss})

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        hp = self.hparams
        nets = (self.generator, self.discriminator)
        if hp.lipschitz == "clip":
            return [torch.optim.RMSprop(net.parameters(), lr=hp.lr) for net in nets]
        return [torch.optim.Adam(net.parameters(), lr=hp.lr, betas=tuple(hp.betas)) for net in nets]


register_pretrained(
    Pretrained(
        name="wgan-gp-cifar10",
        variant="wgan",
        dataset="cifar10",
        resolution=32,
        license="apache-2.0",
        description="WGAN-GP on the CIFAR-10 training set, 32x32 colour, DCGAN-style networks, generator EMA",
        folder="wgan-gp-cifar10",
        sha256="a0b1c7bdcd769cfcab5c139a21eb0782b8d5f010cfd586182928b1200db2ca5b",
        recipe="wgan-gp-cifar10",
        published="the WGAN-GP paper (Gulrajani et al. 2017) reports an Inception Score of 7.86 ± 0.07 on "
        "CIFAR-10 for its ResNet, and its DCGAN-style CNN is quoted at 6.68, from code that trains 200,000 "
        "generator steps at batch 64 with 5 critic steps each. This model has that CNN's shape at half its width "
        "and was trained 1,875 generator steps (0.9% of that) on a 2-core CPU, so it is far from those numbers. Its "
        "IS is not measured here: IS needs the Inception classifier's 1008-way logits, which the offline Inception "
        "file lacks; read its FID and KID beside the real-data row instead.",
    ),
)
