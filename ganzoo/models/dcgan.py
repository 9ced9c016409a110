"""DCGAN: Radford, Metz and Chintala, "Unsupervised Representation Learning with Deep Convolutional
Generative Adversarial Networks", ICLR 2016, arXiv:1511.06434.

The paper's architecture guidelines, as built here:

- generator: a projection of ``z`` to a 4x4 map by a 4x4 transposed convolution, then stride-2 4x4
  transposed convolutions that double the resolution and halve the channels, batch norm and ReLU after
  every layer but the last, and ``tanh`` at the output;
- discriminator: stride-2 4x4 convolutions (no pooling) that halve the resolution and double the
  channels, LeakyReLU(0.2), batch norm on every layer but the first, and a 4x4 valid convolution to one
  logit (the sigmoid lives in the loss);
- weights from N(0, 0.02), batch-norm scales from N(1, 0.02); Adam with lr 2e-4 and beta1 0.5;
- the non-saturating GAN loss.

Reference implementation studied: the PyTorch examples' ``dcgan/main.py`` (BSD-3-Clause).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ganzoo import losses
from ganzoo.gan import LatentGAN
from ganzoo.layers import norm_layer
from ganzoo.registry import Pretrained, register_gan, register_pretrained


def _num_upsamplings(image_size: int) -> int:
    k = math.log2(image_size / 4) if image_size >= 8 else -1
    if k < 1 or k != int(k):
        raise ValueError(f"DCGAN image_size must be 4 * 2**k with k >= 1 (8, 16, 32, 64, ...), got {image_size}")
    return int(k)


def init_weights(module: nn.Module) -> None:
    """DCGAN's initialisation: conv weights ~ N(0, 0.02), normalisation scales ~ N(1, 0.02), biases 0."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d | nn.GroupNorm) and module.weight is not None:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    """``z [N, latent_dim]`` -> images ``[N, image_channels, image_size, image_size]`` in [-1, 1].

    Channels are ``base_channels * 2**(k-1)`` at 4x4, halving at each of the ``k`` doublings.
    """

    def __init__(
        self, latent_dim: int, image_size: int, image_channels: int, base_channels: int, norm: str = "batch"
    ) -> None:
        super().__init__()
        k = _num_upsamplings(image_size)
        ch = base_channels * 2 ** (k - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, ch, 4, 1, 0, bias=norm == "none"),
            norm_layer(norm, ch),
            nn.ReLU(inplace=True),
        ]
        for _ in range(k - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=norm == "none"), norm_layer(norm, ch // 2)]
            layers += [nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, image_channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.latent_dim = latent_dim

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z.view(len(z), self.latent_dim, 1, 1))


class Discriminator(nn.Module):
    """Images ``[N, image_channels, image_size, image_size]`` -> logits ``[N]``."""

    def __init__(self, image_size: int, image_channels: int, base_channels: int, norm: str = "batch") -> None:
        super().__init__()
        k = _num_upsamplings(image_size)
        ch = base_channels
        layers: list[nn.Module] = [nn.Conv2d(image_channels, ch, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for _ in range(k - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=norm == "none"), norm_layer(norm, ch * 2)]
            layers += [nn.LeakyReLU(0.2, True)]
            ch *= 2
        layers += [nn.Conv2d(ch, 1, 4, 1, 0, bias=False)]
        self.net = nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images).flatten()


@register_gan(
    "dcgan",
    tiny=dict(latent_dim=8, image_size=8, image_channels=1, base_channels=4, ema_kimg=0.01),
)
class DCGAN(LatentGAN):
    """DCGAN (Radford et al. 2016) with the non-saturating loss and an optional generator EMA.

    Args:
        latent_dim: size of ``z ~ N(0, I)``.
        image_size: output side, ``4 * 2**k`` (32 for MNIST and CIFAR-10, 64 as in the paper).
        image_channels: 1 (grayscale) or 3 (RGB).
        base_channels: channels of the generator's last hidden layer and the discriminator's first.
        lr: Adam learning rate of both networks.
        betas: Adam betas of both networks.
        ema_kimg: half-life of the generator EMA in thousands of images; ``None`` or 0 for none.
        ema_rampup: NVIDIA's EMA ramp-up: the half-life is at most this fraction of the images seen so far.
        norm: ``"batch"`` (the paper's batch norm) or ``"none"`` (no normalisation layers).
    """

    def __init__(
        self,
        latent_dim: int = 100,
        image_size: int = 64,
        image_channels: int = 3,
        base_channels: int = 64,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        ema_kimg: float | None = None,
        ema_rampup: float | None = None,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.generator = Generator(latent_dim, image_size, image_channels, base_channels, norm)
        self.discriminator = Discriminator(image_size, image_channels, base_channels, norm)
        self.generator.apply(init_weights)
        self.discriminator.apply(init_weights)
        self.init_ema(ema_kimg, ema_rampup)

    def latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.hparams.latent_dim, generator=generator)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        real, _ = batch
        opt_g, opt_d = self.optimizers()
        G, D = self.net("generator"), self.net("discriminator")
        fake = G(self.training_latents(len(real)))
        with self.toggled_optimizer(opt_d):
            d_loss = losses.d_logistic(D(real), D(fake.detach()))
            self.update(opt_d, d_loss)
        with self.toggled_optimizer(opt_g):
            g_loss = losses.g_nonsaturating(D(fake))
            self.update(opt_g, g_loss)
        self.log_dict({"loss/d": d_loss, "loss/g": g_loss}, prog_bar=True)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        betas = tuple(self.hparams.betas)
        return [
            torch.optim.Adam(self.generator.parameters(), lr=self.hparams.lr, betas=betas),
            torch.optim.Adam(self.discriminator.parameters(), lr=self.hparams.lr, betas=betas),
        ]


register_pretrained(
    Pretrained(
        name="dcgan-mnist",
        variant="dcgan",
        dataset="mnist",
        resolution=32,
        license="apache-2.0",
        description="DCGAN on the MNIST training set, 32x32 grayscale, generator EMA",
        folder="dcgan-mnist",
        sha256="e316c4d964b52d8b48fe0af5ba264c6fdd16e4a3d70a9d3f9719c5bc83bd6376",
        recipe="dcgan-mnist",
    ),
)
