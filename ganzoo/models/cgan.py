"""Class-conditional GAN with a projection discriminator: Miyato and Koyama, "cGANs with Projection
Discriminator", ICLR 2018, arXiv:1802.05637; spectral normalisation from Miyato, Kataoka, Koyama and Yoshida,
"Spectral Normalization for Generative Adversarial Networks", ICLR 2018, arXiv:1802.05957.

- Generator: DCGAN's (``ganzoo.models.dcgan``) with conditional batch norm (de Vries et al. 2017; Dumoulin et
  al. 2017), as the projection paper's generators: ``CBN(h, y) = gamma_y * BN(h) + beta_y`` with a learned scale
  and shift per class.
- Discriminator: DCGAN's convolutions, spectrally normalised and without batch norm, give features ``phi(x)``; the
  logit is ``D(x, y) = psi(phi(x)) + <embed(y), sum_pixels phi(x)>``. The projection term is what the optimal
  discriminator's log-density ratio ``log q(y|x) / p(y|x)`` takes when the class posterior is log-linear in
  ``phi``, rather than concatenating ``y`` to the input.
- The hinge loss and Adam (lr 2e-4, betas (0.5, 0.999), one D step per G step: the SN-GAN paper's setting C).

The networks take the class as a one-hot ``c [N, num_classes]`` (``G(z, c)``, ``D(images, c)``), as NVIDIA's do;
``gan.sample(n, labels=[...])`` takes class ids or names (:meth:`ganzoo.gan.GAN.one_hot`).
Reference implementation studied: pfnet-research/sngan_projection (MIT).
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from ganzoo import losses
from ganzoo.gan import LatentGAN
from ganzoo.models.dcgan import Discriminator, _num_upsamplings, init_weights
from ganzoo.registry import Pretrained, register_gan, register_pretrained


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm without its own affine; the scale and shift come from the class: ``gamma(c) BN(x) + beta(c)``,
    initialised to 1 and 0 for every class."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gamma = nn.Linear(num_classes, channels, bias=False)
        self.beta = nn.Linear(num_classes, channels, bias=False)
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        return self.gamma(c)[:, :, None, None] * self.bn(x) + self.beta(c)[:, :, None, None]


class ConditionalGenerator(nn.Module):
    """``G(z [N, latent_dim], c [N, num_classes])`` -> images ``[N, image_channels, image_size, image_size]``: DCGAN's
    transposed convolutions with conditional batch norm and ReLU, ``tanh`` at the output."""

    def __init__(self, latent_dim: int, num_classes: int, image_size: int, image_channels: int, base_channels: int):
        super().__init__()
        k = _num_upsamplings(image_size)
        widths = [base_channels * 2 ** (k - 1 - i) for i in range(k)]
        self.latent_dim = latent_dim
        self.convs = nn.ModuleList([nn.ConvTranspose2d(latent_dim, widths[0], 4, 1, 0, bias=False)])
        self.convs.extend(nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False) for a, b in itertools.pairwise(widths))
        self.norms = nn.ModuleList(ConditionalBatchNorm2d(w, num_classes) for w in widths)
        self.to_image = nn.ConvTranspose2d(widths[-1], image_channels, 4, 2, 1, bias=False)

    def forward(self, z: Tensor, c: Tensor) -> Tensor:
        x = z.view(len(z), self.latent_dim, 1, 1)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = torch.relu(norm(conv(x), c))
        return torch.tanh(self.to_image(x))


class ProjectionDiscriminator(nn.Module):
    """``D(images, c)`` -> logits ``[N]``: ``psi(phi(x)) + <V c, sum_pixels phi(x)>``, every weight spectrally
    normalised (the embedding ``V`` too, as in the paper's code)."""

    def __init__(self, num_classes: int, image_size: int, image_channels: int, base_channels: int) -> None:
        super().__init__()
        net = Discriminator(image_size, image_channels, base_channels, norm="none").net
        net.apply(init_weights)
        self.features, self.psi = net[:-1], net[-1]  # phi: the convolutions; psi: the 4x4 valid conv to one logit
        self.embed = nn.Linear(num_classes, self.psi.in_channels, bias=False)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)
        for m in [*self.features, self.psi, self.embed]:
            if isinstance(m, nn.Conv2d | nn.Linear):
                spectral_norm(m)

    def forward(self, images: Tensor, c: Tensor) -> Tensor:
        h = self.features(images)
        return self.psi(h).flatten() + (self.embed(c) * h.sum(dim=(2, 3))).sum(dim=1)


@register_gan(
    "cgan",
    tiny=dict(latent_dim=8, num_classes=4, image_size=8, image_channels=1, base_channels=4, ema_kimg=0.01),
)
class CGAN(LatentGAN):
    """Class-conditional GAN: conditional-batch-norm generator, projection discriminator, hinge loss.

    Fakes in a training batch take the real batch's labels, so every class is generated as often as it occurs in
    the data. ``sample(n)`` cycles through the classes; ``sample(n, labels=...)`` takes ids or names.

    Args:
        latent_dim: size of ``z ~ N(0, I)``.
        num_classes: number of classes (10 for MNIST); the data must have as many.
        image_size: output side, ``4 * 2**k`` (32 for MNIST at ganzoo's resolution).
        image_channels: 1 or 3.
        base_channels: channels of the generator's last hidden layer and the discriminator's first.
        lr: Adam learning rate of both networks.
        betas: Adam betas of both networks.
        ema_kimg: half-life of the generator EMA in thousands of images; ``None`` for none.
        ema_rampup: NVIDIA's EMA ramp-up: the half-life is at most this fraction of the images seen so far.
        class_names: the classes' names, for ``sample(labels=[names])``, the card and ``ganzoo info``; taken from
            the training data when not given.
    """

    def __init__(
        self,
        latent_dim: int = 128,
        num_classes: int = 10,
        image_size: int = 32,
        image_channels: int = 1,
        base_channels: int = 64,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        ema_kimg: float | None = None,
        ema_rampup: float | None = None,
        class_names: list[str] | None = None,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"a class-conditional GAN needs num_classes >= 1, got {num_classes}")
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for num_classes={num_classes}")
        self.save_hyperparameters()
        self.generator = ConditionalGenerator(latent_dim, num_classes, image_size, image_channels, base_channels)
        self.generator.apply(init_weights)
        self.discriminator = ProjectionDiscriminator(num_classes, image_size, image_channels, base_channels)
        self.init_ema(ema_kimg, ema_rampup)

    def latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``z [n, latent_dim]`` followed by one-hot classes drawn uniformly."""
        z = torch.randn(n, self.hparams.latent_dim, generator=generator)
        return self.with_labels(z, torch.randint(self.num_classes, (n,), generator=generator))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        real, labels = batch
        opt_g, opt_d = self.optimizers()
        G, D = self.net("generator"), self.net("discriminator")
        c = self.batch_labels(labels)
        z = self.training_latents(len(real))[:, : self.hparams.latent_dim]
        fake = G(z, c)
        with self.toggled_optimizer(opt_d):
            real_logits, fake_logits = D(real, c), D(fake.detach(), c)
            d_loss = losses.d_hinge(real_logits, fake_logits)
            self.update(opt_d, d_loss)
        with self.toggled_optimizer(opt_g):
            g_loss = losses.g_wasserstein(D(fake, c))
            self.update(opt_g, g_loss)
        logs = {"loss/d": d_loss, "loss/g": g_loss, "score/real": real_logits.mean(), "score/fake": fake_logits.mean()}
        self.log_dict({k: v.detach() for k, v in logs.items()}, prog_bar=True)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        betas = tuple(self.hparams.betas)
        return [
            torch.optim.Adam(net.parameters(), lr=self.hparams.lr, betas=betas)
            for net in (self.generator, self.discriminator)
        ]


register_pretrained(
    Pretrained(
        name="cgan-mnist",
        variant="cgan",
        dataset="mnist",
        resolution=32,
        license="apache-2.0",
        description="Class-conditional GAN (projection discriminator) on the MNIST training set, 32x32 grayscale, "
        "generator EMA; sample(n, labels=[digits])",
        folder="cgan-mnist",
        sha256="18a327877d60eb127794dc805c776a38f348b704f1b5e79b23cb61a2c9344073",
        recipe="cgan-mnist",
    ),
)
