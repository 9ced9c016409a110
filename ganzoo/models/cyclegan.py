"""CycleGAN: unpaired image-to-image translation with cycle consistency.

Zhu, Park, Isola and Efros, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks",
ICCV 2017, arXiv 1703.10593. Reference implementation studied: junyanz/pytorch-CycleGAN-and-pix2pix (BSD
licence), whose parameter layout the ResNet generator keeps, so that its released generators load as they are.

Names: the paper's ``G: X -> Y`` is ``generator_ab`` (upstream ``netG_A``), ``F: Y -> X`` is ``generator_ba``
(``netG_B``), ``D_Y`` is ``discriminator_b`` (upstream ``netD_A``, which judges ``G``'s outputs) and ``D_X`` is
``discriminator_a`` (``netD_B``).

- Generators: ResNet (Johnson et al. 2016): a 7x7 convolution, two stride-2 downsamplings, ``n_blocks`` residual
  blocks (6 for 128 px, 9 for 256 px), two transposed-convolution upsamplings, a 7x7 convolution and tanh;
  reflection padding, instance norm.
- Discriminators: the 70x70 PatchGAN of :mod:`ganzoo.models.pix2pix`, on one image.
- Objective: least-squares adversarial losses, ``lambda_cycle * (||F(G(x)) - x||_1 + ||G(F(y)) - y||_1)`` with
  ``lambda_cycle = 10``, and the identity loss ``lambda_identity * lambda_cycle * (||G(y) - y||_1 + ||F(x) - x||_1)``
  with ``lambda_identity = 0.5``. The discriminators see generated images from a history of 50 per direction
  (Shrivastava et al. 2017): each new image, with probability 1/2, is swapped for a stored one.
- Adam(2e-4, betas (0.5, 0.999)) over both generators and over both discriminators; constant learning rate, then
  linear decay to zero, on the module's own clock.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ganzoo import losses
from ganzoo.gan import ImageToImageGAN
from ganzoo.layers import norm_layer
from ganzoo.models.pix2pix import (
    PatchDiscriminator,
    _split_training_folder,
    adam_with_decay,
    patchgan_hparams,
    upstream_state,
)
from ganzoo.registry import Pretrained, register_gan, register_pretrained


class ResnetBlock(nn.Module):
    """``x + conv_block(x)``; ``conv_block`` as upstream: pad, conv, norm, ReLU, (dropout,) pad, conv, norm."""

    def __init__(self, dim: int, norm: str, dropout: bool) -> None:
        super().__init__()
        bias = norm != "batch"
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm_layer(norm, dim), nn.ReLU(True)]
        layers += [nn.Dropout(0.5)] if dropout else []
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm_layer(norm, dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """The ResNet generator, laid out as upstream's ``ResnetGenerator``; inputs need sides divisible by 4."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        norm: str = "instance",
        dropout: bool = False,
    ) -> None:
        super().__init__()
        bias = norm != "batch"
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7, bias=bias), norm_layer(norm, ngf)]
        layers.append(nn.ReLU(True))
        for mult in (1, 2):
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=bias),
                       norm_layer(norm, ngf * mult * 2), nn.ReLU(True)]  # fmt: skip
        layers += [ResnetBlock(ngf * 4, norm, dropout) for _ in range(n_blocks)]
        for mult in (4, 2):
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1,
                                          bias=bias), norm_layer(norm, ngf * mult // 2), nn.ReLU(True)]  # fmt: skip
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class ImagePool(nn.Module):
    """A history of up to ``size`` generated images (Shrivastava et al. 2017). :meth:`query` returns a batch the
    size of its input: each image is, with probability 1/2 once the pool is full, swapped for a stored one (which
    the new image replaces), else passed through. Its contents are buffers, so checkpoints keep them; draws come
    from torch's global RNG, which checkpoints keep too."""

    def __init__(self, size: int = 50) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.empty(0), persistent=False)

    @torch.no_grad()
    def query(self, images: Tensor) -> Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            n = len(self.images)
            if n < self.size:
                self.images = torch.cat([self.images.view(n, *image.shape).to(image), image[None]])
                out.append(image)
            elif torch.rand(()) < 0.5:
                i = int(torch.randint(n, ()))
                out.append(self.images[i].clone())
                self.images[i] = image
            else:
                out.append(image)
        return torch.stack(out)


@register_gan(
    "cyclegan",
    task="translation",
    tiny=dict(image_size=32, ngf=4, ndf=4, n_blocks=2, n_layers=2, pool_size=4),
)
class CycleGAN(ImageToImageGAN):
    """CycleGAN (see the module docstring). Training batches are ``(A, B)`` from two domains, drawn independently
    (:class:`ganzoo.data.Unpaired`); ``translate(x, direction="a2b" | "b2a")``.

    Args:
        a_channels, b_channels: channels of domains A and B.
        image_size: the training crop side (previews and the card).
        ngf, n_blocks: the generators' width and residual blocks (9 for 256 px, 6 for 128 px).
        ndf, n_layers: the PatchGAN discriminators' width and depth.
        norm: ``"instance"`` (the paper's) or ``"batch"``.
        dropout: dropout in the residual blocks (off, as the paper).
        lambda_cycle, lambda_identity: the cycle loss weight, and the identity loss's fraction of it.
        pool_size: generated images kept per direction for the discriminators (0: none).
        lr, betas: Adam's.
        lr_constant_kimg, lr_decay_kimg: the schedule (the paper: 100 epochs constant, 100 decaying).
        ema_kimg, ema_rampup: an EMA of both generators (none by default, as the paper).
    """

    ddp_networks: ClassVar[tuple[str, ...]] = ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b")
    directions: ClassVar[dict[str, str]] = {"a2b": "generator_ab", "b2a": "generator_ba"}

    def __init__(
        self,
        a_channels: int = 3,
        b_channels: int = 3,
        image_size: int = 256,
        ngf: int = 64,
        n_blocks: int = 9,
        ndf: int = 64,
        n_layers: int = 3,
        norm: str = "instance",
        dropout: bool = False,
        lambda_cycle: float = 10.0,
        lambda_identity: float = 0.5,
        pool_size: int = 50,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        lr_constant_kimg: float | None = None,
        lr_decay_kimg: float | None = None,
        ema_kimg: float | None = None,
        ema_rampup: float | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if lambda_identity and a_channels != b_channels:
            raise ValueError(f"the identity loss needs domains with the same channels ({a_channels} vs {b_channels}):"
                             " set lambda_identity=0")  # fmt: skip
        self.generator_ab = ResnetGenerator(a_channels, b_channels, ngf, n_blocks, norm, dropout)
        self.generator_ba = ResnetGenerator(b_channels, a_channels, ngf, n_blocks, norm, dropout)
        self.discriminator_a = PatchDiscriminator(a_channels, ndf, n_layers, norm)
        self.discriminator_b = PatchDiscriminator(b_channels, ndf, n_layers, norm)
        self.pool_a, self.pool_b = ImagePool(pool_size), ImagePool(pool_size)
        self.init_ema(ema_kimg, ema_rampup, networks=("generator_ab", "generator_ba"))

    @property
    def size_multiple(self) -> int:
        return 4

    def channels(self, direction: str) -> int:
        return int(self.hparams.a_channels if direction == "a2b" else self.hparams.b_channels)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        real_a, real_b = batch
        hp = self.hparams
        opt_g, opt_d = self.optimizers()
        G, F = self.net("generator_ab"), self.net("generator_ba")
        D_a, D_b = self.net("discriminator_a"), self.net("discriminator_b")
        with self.toggled_optimizer(opt_g):  # upstream's order: both generators, then both discriminators
            fake_b, fake_a = G(real_a), F(real_b)
            adv = losses.g_least_squares(D_b(fake_b)) + losses.g_least_squares(D_a(fake_a))
            cycle = (F(fake_b) - real_a).abs().mean() + (G(fake_a) - real_b).abs().mean()
            loss = adv + hp.lambda_cycle * cycle
            identity = torch.zeros((), device=self.device)
            if hp.lambda_identity:
                identity = (G(real_b) - real_b).abs().mean() + (F(real_a) - real_a).abs().mean()
                loss = loss + hp.lambda_identity * hp.lambda_cycle * identity
            self.update(opt_g, loss)
        with self.toggled_optimizer(opt_d):
            fake_b, fake_a = self.pool_b.query(fake_b), self.pool_a.query(fake_a)
            d_loss = losses.d_least_squares(D_b(real_b), D_b(fake_b))
            d_loss = d_loss + losses.d_least_squares(D_a(real_a), D_a(fake_a))
            self.update(opt_d, d_loss)
        self.log_dict({"loss/g": adv, "loss/d": d_loss, "loss/cycle": cycle, "loss/identity": identity}, prog_bar=True)

    def configure_optimizers(self) -> Any:
        generators = [*self.generator_ab.parameters(), *self.generator_ba.parameters()]
        return adam_with_decay(
            self, [generators, [*self.discriminator_a.parameters(), *self.discriminator_b.parameters()]]
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        pools = [self.pool_a.images.cpu(), self.pool_b.images.cpu()]
        if self.trainer is not None and self.trainer.world_size > 1:  # every process has its own history
            every = [None] * self.trainer.world_size
            torch.distributed.all_gather_object(every, pools)
            checkpoint["ganzoo"]["pools"] = every
        else:
            checkpoint["ganzoo"]["pools"] = [pools]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        every = checkpoint.get("ganzoo", {}).get("pools")
        if every:
            rank = self.trainer.global_rank if self._trainer is not None else 0
            self.pool_a.images, self.pool_b.images = every[min(rank, len(every) - 1)]

    # junyanz' weights ------------------------------------------------------------------------------

    upstream_format = "torch"

    @classmethod
    def upstream_weights(cls, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Tensor]]:
        """Hparams and state dict from junyanz' files, read as data (``torch.load(weights_only=True)``): one
        generator's state dict (a released model such as ``horse2zebra.pth``: the A -> B direction, the only network
        in the state), or a training folder ``{"latest_net_G_A": ..., "latest_net_G_B": ..., "latest_net_D_A": ...,
        "latest_net_D_B": ...}`` (upstream's ``D_A`` judges ``G_A``'s outputs: it becomes ``discriminator_b``). The
        architecture comes from the keys and shapes."""
        g_a, g_b, d_a, d_b = _split_training_folder(data, ("G_A", "G_B", "D_A", "D_B"))
        if g_a is None:
            raise ValueError(f"no A -> B generator (latest_net_G_A) in this upstream data ({sorted(data)})")
        parts = {"generator_ab": g_a, "generator_ba": g_b, "discriminator_b": d_a, "discriminator_a": d_b}
        parts = {k: upstream_state(v) for k, v in parts.items() if v is not None}
        hparams = resnet_hparams(parts["generator_ab"])
        for name in ("discriminator_a", "discriminator_b"):
            if name in parts:
                d = patchgan_hparams(parts[name])
                hparams |= {"ndf": d["ndf"], "n_layers": d["n_layers"]}
        return hparams, {f"{name}.{k}": v for name, part in parts.items() for k, v in part.items()}


def resnet_hparams(state: dict[str, Tensor]) -> dict[str, Any]:
    """CycleGAN's generator hparams from a ResNet generator's state dict (blocks, width, channels, norm, dropout)."""
    first = state.get("model.1.weight")
    if first is None or not any("conv_block" in k for k in state):
        kind = "a U-Net generator (pix2pix's: load it with variant='pix2pix')" if "model.model.0.weight" in state else (
            f"keys such as {sorted(state)[:3]}")  # fmt: skip
        raise ValueError(f"not a ResNet generator (no model.<i>.conv_block): found {kind}")
    blocks = {k.split(".")[1] for k in state if ".conv_block." in k}
    last = max(int(k.split(".")[1]) for k in state if k.endswith(".weight") and state[k].ndim == 4)
    return {
        "a_channels": int(first.shape[1]),
        "b_channels": int(state[f"model.{last}.weight"].shape[0]),
        "ngf": int(first.shape[0]),
        "n_blocks": len(blocks),
        "norm": "batch" if "model.2.weight" in state else "instance",
        "dropout": any(".conv_block.6." in k for k in state),
    }


# junyanz' released CycleGAN generators (resnet_9blocks, instance norm), converted at first load. Where upstream
# released both directions of a pair, one entry holds both: translate(x, direction="b2a") runs the second. The
# style_* generators map photos (their data set's B) to paintings (its A): data_direction "b2a".
_JUNYANZ_CYCLEGAN = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/"
_JUNYANZ_SOURCE = "junyanz/pytorch-CycleGAN-and-pix2pix (Zhu et al. 2017)"


def _official(name: str, dataset: str, a2b: str, b2a: str | None, what: str) -> Pretrained:
    data_direction = "b2a" if a2b.startswith("style_") else "a2b"
    files = (("latest_net_G_A", f"{_JUNYANZ_CYCLEGAN}{a2b}.pth"),)
    files += (("latest_net_G_B", f"{_JUNYANZ_CYCLEGAN}{b2a}.pth"),) if b2a else ()
    both = "both directions" if b2a else "one direction (upstream released no other)"
    return Pretrained(name=name, variant="cyclegan", dataset=dataset, resolution=256, license="bsd", files=files,
                      source=_JUNYANZ_SOURCE, description=f"junyanz' official CycleGAN {what}, {both}",
                      data_direction=data_direction)  # fmt: skip


# fmt: off
register_pretrained(
    _official("cyclegan-horse2zebra", "horse2zebra", "horse2zebra", "zebra2horse", "horse <-> zebra"),
    _official("cyclegan-apple2orange", "apple2orange", "apple2orange", "orange2apple", "apple <-> orange"),
    _official("cyclegan-summer2winter-yosemite", "summer2winter_yosemite", "summer2winter_yosemite",
              "winter2summer_yosemite", "Yosemite summer <-> winter"),
    _official("cyclegan-monet2photo", "monet2photo", "monet2photo", "style_monet", "Monet painting <-> photo"),
    _official("cyclegan-style-vangogh", "vangogh2photo", "style_vangogh", None, "photo -> Van Gogh style"),
    _official("cyclegan-style-cezanne", "cezanne2photo", "style_cezanne", None, "photo -> Cezanne style"),
    _official("cyclegan-style-ukiyoe", "ukiyoe2photo", "style_ukiyoe", None, "photo -> Ukiyo-e style"),
    _official("cyclegan-sat2map", "maps", "sat2map", "map2sat", "aerial photo <-> map"),
    _official("cyclegan-cityscapes-photo2label", "cityscapes", "cityscapes_photo2label", "cityscapes_label2photo",
              "Cityscapes photo <-> labels"),
    _official("cyclegan-facades-photo2label", "facades", "facades_photo2label", "facades_label2photo",
              "facade photo <-> labels"),
    _official("cyclegan-iphone2dslr-flower", "iphone2dslr_flower", "iphone2dslr_flower", None,
              "iPhone -> DSLR flower photo"),
)
# fmt: on

register_pretrained(
    Pretrained(
        name="cyclegan-maps",
        variant="cyclegan",
        dataset="maps",
        resolution=256,
        license="other",
        description="CycleGAN trained here on pix2pix's maps set used unpaired, aerial photo <-> map both ways "
        "(128x128 crops of the 256x256 halves, 16-channel generators of 6 blocks, EMA of both); the training data "
        "is Google Maps imagery, for research use only, and so are these weights. Trained for 6 kimg (5.5 epochs) on "
        "a 2-core CPU",
        folder="cyclegan-maps",
        sha256="4ff58058566c3918398e7cfb73f31e22e015a216e730563d2e276c5b1edebbcb",
        recipe="cyclegan-maps",
        published="The CycleGAN paper reports maps only as human judgements (AMT, Table 1), not L1, SSIM or FID; "
        "its maps models train 200 epochs at 256x256 with 64-channel, 9-block generators.",
    ),
)
