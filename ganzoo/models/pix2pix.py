"""Pix2Pix: paired image-to-image translation with a conditional GAN.

Isola, Zhu, Zhou and Efros, "Image-to-Image Translation with Conditional Adversarial Networks", CVPR 2017,
arXiv 1611.07004. Reference implementation studied: junyanz/pytorch-CycleGAN-and-pix2pix (BSD licence), whose
parameter layout the networks here keep, so that its released ``latest_net_G.pth`` files load without a key map.

- Generator: a U-Net of ``num_downs`` stride-2 4x4 convolutions (``unet_256`` = 8, ``unet_128`` = 7), each
  encoder level joined to its decoder level by a skip connection (concatenation); widths ``ngf * (1, 2, 4, 8, 8,
  ...)``; LeakyReLU(0.2) down, ReLU up, tanh out; dropout(0.5) in the ``num_downs - 5`` innermost decoder levels.
- Discriminator: the PatchGAN ``D(x, y)`` on the channel concatenation of input and output: ``n_layers`` stride-2
  4x4 convolutions then two stride-1 ones (``n_layers = 3``: each output logit sees a 70x70 patch). Logits.
- Objective: ``G* = arg min_G max_D L_cGAN(G, D) + lambda_l1 * E ||y - G(x)||_1`` with ``lambda_l1 = 100``; the
  discriminator's loss is halved (as upstream), and the generator is trained with the non-saturating loss.
- Learning rate: Adam(2e-4, betas (0.5, 0.999)), constant for ``lr_constant_kimg`` thousand images, then linear
  decay to zero over ``lr_decay_kimg`` (the paper's 100 + 100 epochs), on the module's own clock.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import Tensor, nn

from ganzoo import losses
from ganzoo.gan import ImageToImageGAN
from ganzoo.layers import norm_layer
from ganzoo.registry import Pretrained, register_gan, register_pretrained


class UNetBlock(nn.Module):
    """One level of the U-Net: ``x -> cat(x, up(inner(down(x))))``; the outermost level returns ``up(...)`` alone.

    ``model`` is a Sequential laid out as upstream's ``UnetSkipConnectionBlock`` (its indices are the state-dict
    keys): outermost ``[down, inner, relu, up, tanh]``; innermost ``[lrelu, down, relu, up, norm]``; between
    ``[lrelu, down, norm, inner, relu, up, norm(, dropout)]``.
    """

    def __init__(
        self,
        outer: int,
        inner: int,
        *,
        in_channels: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        norm: str = "batch",
        dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        bias = norm != "batch"  # a conv followed by batch norm needs no bias
        down = nn.Conv2d(in_channels or outer, inner, 4, stride=2, padding=1, bias=bias)
        if outermost:
            up = nn.ConvTranspose2d(inner * 2, outer, 4, stride=2, padding=1)
            layers = [down, submodule, nn.ReLU(True), up, nn.Tanh()]
        elif submodule is None:  # innermost
            up = nn.ConvTranspose2d(inner, outer, 4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True), up, norm_layer(norm, outer)]
        else:
            up = nn.ConvTranspose2d(inner * 2, outer, 4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), down, norm_layer(norm, inner), submodule, nn.ReLU(True), up,
                      norm_layer(norm, outer)]  # fmt: skip
            layers += [nn.Dropout(0.5)] if dropout else []
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class UNetGenerator(nn.Module):
    """The U-Net generator; inputs need sides divisible by ``2 ** num_downs``."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "batch",
        dropout: bool = True,
    ) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"num_downs must be at least 5 (the U-Net's fixed levels), got {num_downs}")
        block = UNetBlock(ngf * 8, ngf * 8, norm=norm)  # innermost
        for _ in range(num_downs - 5):
            block = UNetBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, dropout=dropout)
        for mult in (4, 2, 1):
            block = UNetBlock(ngf * mult, ngf * mult * 2, submodule=block, norm=norm)
        self.model = UNetBlock(out_channels, ngf, in_channels=in_channels, submodule=block, outermost=True, norm=norm)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class PatchDiscriminator(nn.Module):
    """The PatchGAN: ``n_layers`` stride-2 convolutions, one stride-1, then a 1-channel stride-1 convolution; one logit
    per patch ``[N, 1, h, w]``. Laid out as upstream's ``NLayerDiscriminator``."""

    def __init__(self, in_channels: int = 6, ndf: int = 64, n_layers: int = 3, norm: str = "batch") -> None:
        super().__init__()
        bias = norm != "batch"
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=bias),
                       norm_layer(norm, ndf * mult), nn.LeakyReLU(0.2, True)]  # fmt: skip
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def adam_with_decay(gan: ImageToImageGAN, groups: list[Any]) -> Any:
    """One Adam (``hparams.lr``, ``betas``) per parameter group, each with :func:`linear_decay` of the learning rate
    on the module's clock when ``hparams.lr_decay_kimg`` is set (stepped once per batch by the base class)."""
    hp = gan.hparams
    optimizers = [torch.optim.Adam(g, lr=hp.lr, betas=tuple(hp.betas)) for g in groups]
    if not hp.lr_decay_kimg:
        return optimizers
    schedule = lambda _: linear_decay(gan.images_seen, hp.lr_constant_kimg, hp.lr_decay_kimg)  # noqa: E731
    return optimizers, [torch.optim.lr_scheduler.LambdaLR(o, schedule) for o in optimizers]


def linear_decay(images_seen: int, constant_kimg: float | None, decay_kimg: float | None) -> float:
    """The learning-rate factor: 1 for ``constant_kimg`` thousand images, then linearly to 0 over ``decay_kimg``."""
    if not decay_kimg:
        return 1.0
    kimg = images_seen / 1000.0 - (constant_kimg or 0.0)
    return max(0.0, 1.0 - max(kimg, 0.0) / decay_kimg)


@register_gan(
    "pix2pix",
    task="translation",
    tiny=dict(image_size=32, num_downs=5, ngf=4, ndf=4, n_layers=2),
)
class Pix2Pix(ImageToImageGAN):
    """Pix2Pix (see the module docstring). Training batches are pairs ``(A, B)``; ``translate`` maps A to B.

    Args:
        input_channels, output_channels: channels of A and of B.
        image_size: the training crop side (what previews and the card show; the networks take any multiple of
            ``2 ** num_downs``).
        num_downs: U-Net depth (8 for 256 px, 7 for 128 px).
        ngf, ndf: widths of the generator's first and the discriminator's first layer.
        norm: ``"batch"`` (the paper's) or ``"instance"``, in both networks.
        dropout: dropout in the U-Net's inner decoder levels (the paper's noise source).
        n_layers: stride-2 layers of the PatchGAN (3: 70x70 patches).
        lambda_l1: weight of the L1 term.
        lr, betas: Adam's, for both networks.
        lr_constant_kimg, lr_decay_kimg: the schedule (see :func:`linear_decay`); no decay by default.
        ema_kimg, ema_rampup: an EMA of the generator (none by default, as the paper).
    """

    def __init__(
        self,
        input_channels: int = 3,
        output_channels: int = 3,
        image_size: int = 256,
        num_downs: int = 8,
        ngf: int = 64,
        ndf: int = 64,
        norm: str = "batch",
        dropout: bool = True,
        n_layers: int = 3,
        lambda_l1: float = 100.0,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        lr_constant_kimg: float | None = None,
        lr_decay_kimg: float | None = None,
        ema_kimg: float | None = None,
        ema_rampup: float | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.generator = UNetGenerator(input_channels, output_channels, num_downs, ngf, norm, dropout)
        self.discriminator = PatchDiscriminator(input_channels + output_channels, ndf, n_layers, norm)
        self.init_ema(ema_kimg, ema_rampup)

    @property
    def size_multiple(self) -> int:
        return 2 ** int(self.hparams.num_downs)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        real_a, real_b = batch
        opt_g, opt_d = self.optimizers()
        G, D = self.net("generator"), self.net("discriminator")
        fake_b = G(real_a)
        with self.toggled_optimizer(opt_d):
            real_logits, fake_logits = D(torch.cat([real_a, real_b], 1)), D(torch.cat([real_a, fake_b.detach()], 1))
            d_loss = 0.5 * losses.d_logistic(real_logits, fake_logits)
            self.update(opt_d, d_loss)
        with self.toggled_optimizer(opt_g):
            g_adv = losses.g_nonsaturating(D(torch.cat([real_a, fake_b], 1)))
            l1 = (fake_b - real_b).abs().mean()
            self.update(opt_g, g_adv + self.hparams.lambda_l1 * l1)
        self.log_dict({"loss/d": d_loss, "loss/g": g_adv, "loss/l1": l1}, prog_bar=True)

    def configure_optimizers(self) -> Any:
        return adam_with_decay(self, [self.generator.parameters(), self.discriminator.parameters()])

    # junyanz' weights ------------------------------------------------------------------------------

    upstream_format = "torch"

    @classmethod
    def upstream_weights(cls, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Tensor]]:
        """Hparams and state dict from junyanz' files, read as data (``torch.load(weights_only=True)``): a
        generator's state dict (``latest_net_G.pth``, ``facades_label2photo.pth``: the state holds the generator
        only), or a training folder ``{"latest_net_G": ..., "latest_net_D": ...}``. The architecture comes from the
        keys and shapes; dropout, which no weight records, is on (upstream's default for pix2pix)."""
        g, d = _split_training_folder(data, ("G", "D"))
        if g is None:
            raise ValueError(f"no generator in this upstream data (it holds {sorted(data)})")
        g = upstream_state(g)
        hparams = unet_hparams(g)
        state = {f"generator.{k}": v for k, v in g.items()}
        if d is not None:
            d = upstream_state(d)
            d_hparams = patchgan_hparams(d)
            if d_hparams["in_channels"] != hparams["input_channels"] + hparams["output_channels"]:
                channels = hparams["input_channels"] + hparams["output_channels"]
                raise ValueError(f"the discriminator takes {d_hparams['in_channels']} channels, not the generator's "
                                 f"input and output ({channels})")  # fmt: skip
            hparams |= {"ndf": d_hparams["ndf"], "n_layers": d_hparams["n_layers"]}
            state |= {f"discriminator.{k}": v for k, v in d.items()}
        return hparams, state


def _split_training_folder(data: dict[str, Any], roles: tuple[str, ...]) -> tuple[Any, ...]:
    """``(G, D, ...)`` state dicts from a file's data (a state dict: the generator) or a training folder's
    ``{"latest_net_G": ..., "<epoch>_net_D": ...}`` (the newest epoch's when there are several)."""
    if any(isinstance(v, Tensor) for v in data.values()):
        return (data,) + (None,) * (len(roles) - 1)
    found = {}
    for role in roles:
        names = sorted(k for k in data if re.fullmatch(rf"(latest|\d+)_net_{role}", k))
        latest = [k for k in names if k.startswith("latest")] or sorted(names, key=lambda k: int(k.split("_")[0]))
        found[role] = data[latest[-1]] if latest else None
    if all(v is None for v in found.values()):
        raise ValueError(f"no junyanz network files (latest_net_{'/'.join(roles)}.pth) among {sorted(data)}")
    return tuple(found.values())


def upstream_state(state: dict[str, Any]) -> dict[str, Tensor]:
    """An upstream state dict as the modules here hold it: ``module.`` prefixes (DataParallel) dropped, and the
    InstanceNorm running statistics that files from PyTorch < 0.4 carry (upstream's loader drops them too)."""
    out = {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, Tensor)}
    for key in [k for k in out if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]:
        if key.rsplit(".", 1)[0] + ".weight" not in out:  # a norm layer without affine weights: InstanceNorm
            del out[key]
    return out


def unet_hparams(state: dict[str, Tensor]) -> dict[str, Any]:
    """Pix2Pix's generator hparams from a U-Net state dict (depth, widths, channels, norm)."""
    first = state.get("model.model.0.weight")
    if first is None:
        kind = "a ResNet generator (CycleGAN's: load it with variant='cyclegan')" if any(
            "conv_block" in k for k in state) else f"keys such as {sorted(state)[:3]}"  # fmt: skip
        raise ValueError(f"not a U-Net generator (no model.model.0.weight): found {kind}")
    depth = max(k.count("model.") for k in state) - 1  # model.model.1.model.3...: one "model." per level
    batch = any(k.endswith("model.2.weight") and state[k].ndim == 1 for k in state)
    return {
        "input_channels": int(first.shape[1]),
        "output_channels": int(state["model.model.3.weight"].shape[1]),
        "ngf": int(first.shape[0]),
        "num_downs": depth,
        "norm": "batch" if batch else "instance",
    }


def patchgan_hparams(state: dict[str, Tensor]) -> dict[str, Any]:
    """The PatchGAN's hparams from its state dict (``model.<i>.weight`` of its convolutions)."""
    convs = sorted((int(m.group(1)), v) for k, v in state.items()
                   if (m := re.fullmatch(r"model\.(\d+)\.weight", k)) and v.ndim == 4)  # fmt: skip
    if len(convs) < 3:
        raise ValueError(f"not a PatchGAN discriminator: found keys such as {sorted(state)[:3]}")
    batch = any(v.ndim == 1 and k.endswith(".weight") for k, v in state.items())
    return {"in_channels": int(convs[0][1].shape[1]), "ndf": int(convs[0][1].shape[0]), "n_layers": len(convs) - 2,
            "norm": "batch" if batch else "instance"}  # fmt: skip


# junyanz' released pix2pix generators (unet_256, batch norm, dropout), converted at first load. Each maps its
# name's first domain to its second; three were trained BtoA on their data set's pairs (upstream's --direction),
# so their a2b runs the data's B -> A: facades (photo | label), maps (photo | map), night2day (night | day).
_JUNYANZ_PIX2PIX = "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/"
_JUNYANZ_SOURCE = "junyanz/pytorch-CycleGAN-and-pix2pix (Isola et al. 2017, Zhu et al. 2017)"

register_pretrained(
    *(
        Pretrained(
            name=f"pix2pix-{name.replace('_', '-')}",
            variant="pix2pix",
            dataset=dataset,
            resolution=256,
            license="bsd",
            url=f"{_JUNYANZ_PIX2PIX}{name}.pth",
            source=_JUNYANZ_SOURCE,
            description=f"junyanz' official pix2pix {what} generator (no discriminator released)",
            data_direction=data_direction,
        )
        for name, dataset, what, data_direction in [
            ("facades_label2photo", "facades", "facade labels -> photo", "b2a"),
            ("sat2map", "maps", "aerial photo -> map", "a2b"),
            ("map2sat", "maps", "map -> aerial photo", "b2a"),
            ("edges2shoes", "edges2shoes", "edges -> shoe photo", "a2b"),
            ("day2night", "night2day", "day -> night", "b2a"),
        ]
    )
)

register_pretrained(
    Pretrained(
        name="pix2pix-maps",
        variant="pix2pix",
        dataset="maps",
        resolution=256,
        license="other",
        description="Pix2Pix trained here on pix2pix's maps set, aerial photo to map (128x128 crops of the 256x256 "
        "pairs, a 7-level U-Net of 24 channels); the training data is Google Maps imagery, for research use only, "
        "and so are these weights. Trained on a 2-core CPU in two stages (60 kimg, then 150 kimg more from those "
        "weights; the training table counts both); the generator is the mean of the second stage's checkpoints over "
        "its learning-rate decay (checkpoint averaging), which cancels the speckle a single iterate leaves on flat "
        "map areas",
        folder="pix2pix-maps",
        sha256="f832de7e3dd44539e12e5e35c912a6e22757e2c2dd0ade428ba21b7871a9c64c",
        recipe="pix2pix-maps",
        published="junyanz' official 64-channel aerial-to-map model scores FID 149.73 and mmgeneration's 122.59 "
        "(mmgeneration's measurement: batch norm on batch statistics and dropout on at test, the whole val split of "
        "1,098 pairs, 200 training epochs); ganzoo measures eval mode on the first 200 val pairs, so its FID-200 "
        "does not compare with those. The pix2pix paper reports maps only as human judgements (AMT).",
    ),
)
