"""ProGAN: Karras, Aila, Laine and Lehtinen, "Progressive Growing of GANs for Improved Quality, Stability, and
Variation", ICLR 2018, arXiv:1710.10196.

Generator and discriminator start at 4x4 and grow together by one resolution per stage. A new stage ``s`` is
faded in while ``alpha`` goes linearly from 0 to 1 over ``fade_kimg`` thousand images, then trained on its own
for ``stable_kimg``:

    G_s(z) = alpha * rgb_s(h_s) + (1 - alpha) * up(rgb_{s-1}(h_{s-1}))
    D_s(x) = D_{<s}(alpha * down(block_s(from_rgb_s(x))) + (1 - alpha) * from_rgb_{s-1}(down(x)))

and the reals the discriminator sees are faded alike, ``alpha x + (1 - alpha) up(down(x))``, at the stage's
resolution (box-filtered from the data's). Alpha and the stage are functions of the images seen (the module's own
clock), so they survive resuming and agree on every process. The paper's three stabilisers (section 4):

- the equalized learning rate: weights stored as ``N(0, 1)``, scaled at run time by He's ``sqrt(2 / fan_in)``;
- pixel norm, ``a / sqrt(mean_c(a^2) + 1e-8)``, on ``z`` and after every generator convolution;
- the minibatch standard deviation as an extra feature map before the discriminator's last convolution;

with the WGAN-GP loss plus the drift term that keeps the critic's outputs near zero,

    L_D = E[D(G(z))] - E[D(x)] + lambda E[(||grad D(xhat)||_2 - 1)^2] + eps_drift E[D(x)^2]
    L_G = -E[D(G(z))],  lambda = 10, eps_drift = 0.001,

Adam (lr 1e-3, betas (0, 0.99)) and an EMA of the generator's weights (decay 0.999 per step of 16 images in the
paper: a half-life of about 11 kimg).

The layers, their state-dict layout and three details follow facebookresearch/pytorch_GAN_zoo's re-implementation
(BSD-3; read, not copied) so that its released weights load and compute the same images: the equalized scale
applies to the bias as well (``y = (W x + b) sqrt(2 / fan_in)``); the minibatch std takes groups of 4 consecutive
samples with the unbiased variance; the output is linear under the WGAN-GP loss (``output_activation="tanh"`` for
the zoo's DCGAN-loss models). Where the zoo departs from the paper ganzoo follows the paper: its discriminator
skips the fade at the first growth (8x8), here both networks fade at every stage.

Growing inside Lightning: when the clock reaches a new stage, :meth:`ProGAN.grow` adds a block to G, D and the EMA
generator, initialised from the shared latent stream's RNG (so every process and every resumed run builds the same
layers), and appends the new parameters to each optimizer as a new parameter group, which keeps the Adam state of
the old ones. Layers that a stage no longer uses (the ``to_rgb``/``from_rgb`` of earlier resolutions, and the
previous one once the fade is over) are frozen, so that ``gan_ddp``, which re-wraps the networks whenever the
trainable set changes, never sees an unused parameter. A checkpoint holds the networks at their current size; the
module grows to the size of the state it loads (:meth:`GAN.adapt_to_state`), so a run stopped mid-fade resumes
exactly. The data module serves each stage's resolution, and with ``batch_sizes`` its batch size, as the paper
lowers it when the resolution grows (:meth:`ProGAN.data_schedule`, :class:`ganzoo.data.ScheduledBatchSampler`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo import losses
from ganzoo.gan import LatentGAN
from ganzoo.layers import EqualizedConv2d, EqualizedLinear, MinibatchStdLayer, pixel_norm, upsample_nearest
from ganzoo.registry import Pretrained, register_gan, register_pretrained

HE_GAIN = math.sqrt(2.0)
OUTPUT_ACTIVATIONS = (None, "tanh")


def _conv(in_channels: int, out_channels: int, kernel_size: int) -> EqualizedConv2d:
    return EqualizedConv2d(in_channels, out_channels, kernel_size, gain=HE_GAIN, scale_bias=True)


def _linear(in_features: int, out_features: int) -> EqualizedLinear:
    return EqualizedLinear(in_features, out_features, gain=HE_GAIN, scale_bias=True)


def _init_(params: Sequence[nn.Parameter], generator: torch.Generator) -> None:
    """The equalized-lr initialisation of a new block: weights ``N(0, 1)``, biases zero, drawn from ``generator``."""
    with torch.no_grad():
        for p in params:
            if p.ndim > 1:
                p.copy_(torch.randn(p.shape, generator=generator).to(p))
            else:
                p.zero_()


class _Growing(nn.Module):
    """What G and D share: ``blocks`` (one per stage after 4x4), a 1x1 RGB layer per stage (``to_rgb`` or
    ``from_rgb``), ``alpha``, and :meth:`grow`."""

    channels: list[int]
    blocks: nn.ModuleList
    conv0: EqualizedConv2d

    @property
    def stage(self) -> int:
        return len(self.blocks)

    @property
    def rgb(self) -> nn.ModuleList:
        raise NotImplementedError

    def new_stage(self, s: int) -> tuple[nn.ModuleList, EqualizedConv2d]:
        """The block and the RGB layer of stage ``s``."""
        raise NotImplementedError

    def grow(self) -> list[nn.Parameter]:
        """Add the next stage; returns its parameters."""
        s = self.stage + 1
        if s >= len(self.channels):
            side = 4 * 2 ** (s - 1)
            raise ValueError(f"the {type(self).__name__.lower()} is at its final stage ({s - 1}: {side}x{side})")
        block, rgb = self.new_stage(s)
        device = self.conv0.weight.device
        self.blocks.append(block.to(device))
        self.rgb.append(rgb.to(device))
        return [*block.parameters(), *rgb.parameters()]


class Generator(_Growing):
    """``z [N, latent_dim]`` -> images ``[N, image_channels, 4 * 2**stage, 4 * 2**stage]``.

    ``channels[s]`` is the width at stage ``s`` (resolution ``4 * 2**s``); the network holds stages ``0..stage``
    and :meth:`grow` adds the next. ``alpha`` in [0, 1] blends the newest stage's output with the upsampled
    output of the one before (1: the newest alone). Layout: ``format`` (z to 4x4), ``conv0``, ``blocks.{s-1}``
    (upsample, two 3x3 convs), ``to_rgb.{s}``.
    """

    def __init__(
        self,
        latent_dim: int,
        channels: Sequence[int],
        image_channels: int = 3,
        *,
        pixel_norm: bool = True,
        output_activation: str | None = None,
        leak: float = 0.2,
    ) -> None:
        super().__init__()
        self.channels, self.image_channels = list(channels), image_channels
        self.use_pixel_norm, self.output_activation, self.leak = pixel_norm, output_activation, leak
        self.alpha = 1.0
        c0 = self.channels[0]
        self.format = _linear(latent_dim, 16 * c0)
        self.conv0 = _conv(c0, c0, 3)
        self.blocks = nn.ModuleList()
        self.to_rgb = nn.ModuleList([_conv(c0, image_channels, 1)])

    @property
    def rgb(self) -> nn.ModuleList:
        return self.to_rgb

    def new_stage(self, s: int) -> tuple[nn.ModuleList, EqualizedConv2d]:
        c_in, c = self.channels[s - 1], self.channels[s]
        return nn.ModuleList([_conv(c_in, c, 3), _conv(c, c, 3)]), _conv(c, self.image_channels, 1)

    def _act_norm(self, x: Tensor) -> Tensor:
        x = F.leaky_relu(x, self.leak)
        return pixel_norm(x) if self.use_pixel_norm else x

    def forward(self, z: Tensor) -> Tensor:
        x = pixel_norm(z) if self.use_pixel_norm else z
        x = self._act_norm(self.format(x).reshape(len(z), -1, 4, 4))
        x = self._act_norm(self.conv0(x))
        fading = self.stage > 0 and self.alpha < 1
        y = None
        for i, block in enumerate(self.blocks):
            if fading and i == self.stage - 1:
                y = upsample_nearest(self.to_rgb[i](x))
            x = upsample_nearest(x)
            for conv in block:
                x = self._act_norm(conv(x))
        x = self.to_rgb[self.stage](x)
        if y is not None:
            x = self.alpha * x + (1.0 - self.alpha) * y
        return torch.tanh(x) if self.output_activation == "tanh" else x


class Discriminator(_Growing):
    """Images at the current stage's resolution -> one score per image ``[N, 1]``.

    Layout: ``from_rgb.{s}`` (1x1), ``blocks.{s-1}`` (two 3x3 convs, then 2x2 average pooling), the minibatch std
    (``mbstd``), ``conv0`` (3x3 at 4x4), ``fc`` and ``out``. ``alpha`` blends the newest stage's features with
    those of the half-resolution input through the previous ``from_rgb``.
    """

    def __init__(
        self, channels: Sequence[int], image_channels: int = 3, *, mbstd: bool = True, leak: float = 0.2
    ) -> None:
        super().__init__()
        self.channels, self.image_channels, self.leak = list(channels), image_channels, leak
        self.alpha = 1.0
        c0 = self.channels[0]
        self.from_rgb = nn.ModuleList([_conv(image_channels, c0, 1)])
        self.blocks = nn.ModuleList()
        self.mbstd = MinibatchStdLayer(4, grouping="consecutive") if mbstd else None
        self.conv0 = _conv(c0 + (1 if mbstd else 0), c0, 3)
        self.fc = _linear(16 * c0, c0)
        self.out = _linear(c0, 1)

    @property
    def rgb(self) -> nn.ModuleList:
        return self.from_rgb

    def new_stage(self, s: int) -> tuple[nn.ModuleList, EqualizedConv2d]:
        c, c_out = self.channels[s], self.channels[s - 1]
        return nn.ModuleList([_conv(c, c, 3), _conv(c, c_out, 3)]), _conv(self.image_channels, c, 1)

    def forward(self, x: Tensor) -> Tensor:
        act = lambda t: F.leaky_relu(t, self.leak)  # noqa: E731
        fading = self.stage > 0 and self.alpha < 1
        y = act(self.from_rgb[self.stage - 1](F.avg_pool2d(x, 2))) if fading else None
        x = act(self.from_rgb[self.stage](x))
        for i in reversed(range(self.stage)):
            for conv in self.blocks[i]:
                x = act(conv(x))
            x = F.avg_pool2d(x, 2)
            if y is not None and i == self.stage - 1:
                x = self.alpha * x + (1.0 - self.alpha) * y
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = act(self.conv0(x))
        x = act(self.fc(x.flatten(1)))
        return self.out(x)


def _as_list(value: float | Sequence[float], n: int, name: str) -> list[float]:
    values = [float(value)] * n if isinstance(value, (int, float)) else [float(v) for v in value]
    if len(values) != n or any(v < 0 for v in values):
        raise ValueError(f"{name} must be one number >= 0 or one per stage ({n}), got {value!r}")
    return values


@register_gan(
    "progan",
    tiny=dict(
        latent_dim=8,
        image_size=16,
        image_channels=3,
        channels=[8, 8, 4],
        fade_kimg=0.016,
        stable_kimg=0.008,
        ema_kimg=0.01,
    ),
)
class ProGAN(LatentGAN):
    """ProGAN with the growth schedule on the module's clock.

    Args:
        latent_dim: size of ``z ~ N(0, I)`` (512 in the paper).
        image_size: the final resolution, ``4 * 2**k``.
        image_channels: 1 or 3.
        channels: the width of each stage from 4x4 to ``image_size`` (``log2(image_size) - 1`` numbers; the paper's
            CelebA-HQ networks: 512 up to 64x64, then 256, 128, 64, 32, 16).
        fade_kimg: thousands of images over which each new stage fades in (one number, or one per stage; stage 0
            has no fade). The paper: 800.
        stable_kimg: thousands of images each stage trains alone after its fade (the last stage goes on until
            training stops). The paper: 800.
        pixel_norm: pixel norm in the generator.
        mbstd: the minibatch standard deviation in the discriminator.
        output_activation: ``None`` (linear, the WGAN-GP models) or ``"tanh"``.
        gp_weight: lambda of the gradient penalty.
        drift_weight: eps_drift of the drift term.
        lr, betas: Adam's, for both networks.
        ema_kimg: half-life of the generator EMA in thousands of images; ``None`` for none.
        ema_rampup: NVIDIA's EMA ramp-up (see :meth:`GAN.init_ema`).
        batch_sizes: images per batch and process at each stage (the paper lowers it as the resolution grows, to
            fit memory); the data module then serves these instead of its own ``batch_size``. ``None``: the data
            module's throughout.
    """

    def __init__(
        self,
        latent_dim: int = 512,
        image_size: int = 32,
        image_channels: int = 3,
        channels: Sequence[int] = (512, 512, 512, 512),
        fade_kimg: float | Sequence[float] = 800.0,
        stable_kimg: float | Sequence[float] = 800.0,
        pixel_norm: bool = True,
        mbstd: bool = True,
        output_activation: str | None = None,
        gp_weight: float = 10.0,
        drift_weight: float = 0.001,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.0, 0.99),
        ema_kimg: float | None = 10.0,
        ema_rampup: float | None = None,
        batch_sizes: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        stages = int(math.log2(image_size)) - 1 if image_size >= 4 else 0
        if image_size < 4 or 4 * 2 ** (stages - 1) != image_size:
            raise ValueError(f"image_size must be 4 * 2**k (4, 8, 16, 32, ...), got {image_size}")
        if len(channels) != stages:
            raise ValueError(f"channels needs one width per stage from 4x4 to {image_size}x{image_size} ({stages}), "
                             f"got {len(channels)}: {list(channels)}")  # fmt: skip
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"output_activation must be None or 'tanh', got {output_activation!r}")
        if batch_sizes is not None and (len(batch_sizes) != stages or min(batch_sizes) < 1):
            raise ValueError(f"batch_sizes needs one batch size >= 1 per stage ({stages}), got {list(batch_sizes)}")
        self.save_hyperparameters()
        self.hparams.channels = list(channels)
        self.hparams.batch_sizes = list(batch_sizes) if batch_sizes is not None else None
        self.fades = _as_list(fade_kimg, stages, "fade_kimg")
        self.stables = _as_list(stable_kimg, stages, "stable_kimg")
        self.generator = Generator(latent_dim, channels, image_channels, pixel_norm=pixel_norm,
                                   output_activation=output_activation)  # fmt: skip
        self.discriminator = Discriminator(channels, image_channels, mbstd=mbstd)
        self.init_ema(ema_kimg, ema_rampup)
        # The blend of the newest stage, kept in the state dict (a converted or exported model holds its own).
        self.register_buffer("alpha", torch.ones([]))
        self._alpha = 1.0  # its value on the host, so that a step never reads it back from the device

    # Growth ----------------------------------------------------------------------------------------

    @property
    def stage(self) -> int:
        """The stage the networks are at: their resolution is ``4 * 2**stage``."""
        return self.generator.stage

    @property
    def resolution(self) -> int:
        return 4 * 2**self.stage

    def schedule(self, images: int) -> tuple[int, float]:
        """``(stage, alpha)`` after ``images`` real images: stage 0 for ``stable_kimg[0]``, then for each next
        stage a fade (alpha from 0 to 1) of ``fade_kimg[s]`` and a stable phase of ``stable_kimg[s]``."""
        kimg = images / 1000.0
        for row in reversed(self.stage_table()):
            if kimg >= row["fade_from_kimg"]:
                fade = row["stable_from_kimg"] - row["fade_from_kimg"]
                return row["stage"], min((kimg - row["fade_from_kimg"]) / fade, 1.0) if fade else 1.0
        return 0, 1.0

    def stage_table(self) -> list[dict[str, Any]]:
        """The schedule as rows: resolution, and the kimg where each stage's fade starts and its stable phase."""
        rows, start = [], 0.0
        for s in range(len(self.fades)):
            fade = self.fades[s] if s else 0.0
            last = s == len(self.fades) - 1
            rows.append({"stage": s, "resolution": 4 * 2**s, "fade_from_kimg": start, "stable_from_kimg": start + fade,
                         "until_kimg": None if last else start + fade + self.stables[s]})  # fmt: skip
            start += fade + self.stables[s]
        return rows

    def data_schedule(self, images_seen: int) -> tuple[int | None, int | None]:
        """The stage's batch size (``batch_sizes``; ``None`` without: the data module's) and resolution."""
        stage, _ = self.schedule(images_seen)
        sizes = self.hparams.get("batch_sizes")
        return (sizes[stage] if sizes else None), 4 * 2**stage

    def training_state(self) -> dict[str, Any]:
        """The base's record, plus where the growth is (``ganzoo info`` shows it) and the whole schedule."""
        where = {"stage": self.stage, "resolution": self.resolution, "alpha": self._alpha}
        return {**super().training_state(), **where, "schedule": self.stage_table()}

    def grow(self, generator: torch.Generator | None = None) -> None:
        """Add the next stage to G, D and the EMA generator (which starts equal to G's new layers), initialised
        from ``generator``; while fitting, the new parameters join each optimizer as a new parameter group."""
        g = generator or torch.Generator().manual_seed(self.stage)
        new_g, new_d = self.generator.grow(), self.discriminator.grow()
        _init_(new_g, g)
        _init_(new_d, g)
        if self.generator_ema is not None:
            for p_ema, p in zip(self.generator_ema.grow(), new_g, strict=True):
                p_ema.requires_grad_(False).data.copy_(p.data)
        if self._trainer is not None and self.trainer.optimizers:
            opt_g, opt_d = self.trainer.optimizers
            opt_g.add_param_group({"params": new_g})
            opt_d.add_param_group({"params": new_d})

    def set_alpha(self, alpha: float) -> None:
        """Set the blend of the newest stage in every network, and freeze the layers the stage does not use."""
        self._alpha = float(alpha)
        self.alpha.fill_(self._alpha)
        nets = [self.generator, self.discriminator] + ([self.generator_ema] if self.generator_ema is not None else [])
        for net in nets:
            net.alpha = self._alpha
        for net in (self.generator, self.discriminator):
            for i, layer in enumerate(net.rgb):
                used = i == self.stage or (i == self.stage - 1 and self._alpha < 1)
                layer.requires_grad_(used)

    def adapt_to_state(self, state: dict[str, Tensor]) -> None:
        """Grow to the stage of ``state`` (a checkpoint's or model folder's) before it loads, and take its alpha."""
        stages = {int(k.split(".")[2]) for k in state if k.startswith("generator.blocks.")}
        target = max(stages) + 1 if stages else 0
        if target > len(self.fades) - 1:
            raise ValueError(f"the state has {target + 1} stages, this ProGAN {len(self.fades)}")
        while self.stage < target:
            self.grow()
        if "alpha" in state:
            self.set_alpha(float(state["alpha"]))

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        super().on_train_batch_start(batch, batch_idx)
        stage, alpha = self.schedule(self.images_seen)
        if stage < self.stage:
            raise RuntimeError(
                f"this ProGAN is at stage {self.stage} ({self.resolution}x{self.resolution}), but its schedule puts "
                f"{self.images_seen} images seen at stage {stage}: to train it further, give it a schedule that has "
                "reached its stage by then (fade_kimg=0, stable_kimg=0 for a finished model)"
            )
        before = (self.stage, self._alpha < 1)  # what set_alpha's trainable layers depend on
        while self.stage < stage:
            # The new layers' weights come from the latent stream's RNG: the same on every process and, restored
            # with the checkpoint, in a resumed run.
            seed = int(torch.randint(2**62, (), generator=self._latent_rng))
            self.grow(torch.Generator().manual_seed(seed))
        self.set_alpha(alpha)
        if self._ddp and (self.stage, self._alpha < 1) != before:
            self.trainer.strategy.configure_ddp()  # DDP registers the trainable parameters when it wraps

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        hp = self.hparams
        optimizers = []
        for net in (self.generator, self.discriminator):
            rgb = net.rgb
            base = [p for name, p in net.named_parameters() if not name.startswith(("blocks.", "to_rgb.", "from_rgb."))]
            # One parameter group per stage, as growing appends them, so a resumed optimizer's state lines up.
            groups = [{"params": base + list(rgb[0].parameters())}]
            groups += [{"params": [*net.blocks[s].parameters(), *rgb[s + 1].parameters()]} for s in range(net.stage)]
            optimizers.append(torch.optim.Adam(groups, lr=hp.lr, betas=tuple(hp.betas), eps=1e-8))
        return optimizers

    # Training --------------------------------------------------------------------------------------

    def latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.hparams.latent_dim, generator=generator)

    def reals_at_stage(self, real: Tensor) -> Tensor:
        """The data's images at the current resolution (box-filtered here when a loader serves them larger than the
        stage's; ganzoo's data modules serve them at it), faded like the networks."""
        factor = real.shape[-1] // self.resolution
        if factor > 1:
            real = F.avg_pool2d(real, factor)
        if self.stage > 0 and self._alpha < 1:
            real = self._alpha * real + (1.0 - self._alpha) * upsample_nearest(F.avg_pool2d(real, 2))
        return real

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        hp = self.hparams
        real = self.reals_at_stage(batch[0])
        opt_g, opt_d = self.optimizers()
        G, D = self.net("generator"), self.net("discriminator")
        with self.toggled_optimizer(opt_d):
            with torch.no_grad():
                fake = G(self.training_latents(len(real)))
            real_scores, fake_scores = D(real), D(fake)
            wasserstein = losses.d_wasserstein(real_scores, fake_scores)
            gp = losses.gradient_penalty(D, real, fake)
            drift = real_scores.square().mean()
            d_loss = wasserstein + hp.gp_weight * gp + hp.drift_weight * drift
            self.update(opt_d, d_loss)
        with self.toggled_optimizer(opt_g):
            g_loss = losses.g_wasserstein(D(G(self.training_latents(len(real)))))
            self.update(opt_g, g_loss)
        logs = {
            "loss/d": d_loss,
            "loss/g": g_loss,
            "loss/gp": gp,
            "loss/drift": drift,
            "score/wasserstein": -wasserstein,
        }
        self.log_dict({k: v.detach() for k, v in logs.items()}, prog_bar=True)
        self.log_dict({"progress/stage": float(self.stage), "progress/alpha": self._alpha})

    def preview(self, n: int = 64, seed: int = 0) -> tuple[Tensor, int | None]:
        """Samples at the current resolution, shown at the final one (nearest), so grids compare across stages."""
        images, nrow = super().preview(n, seed)
        factor = self.hparams.image_size // images.shape[-1]
        return images.repeat_interleave(factor, 2).repeat_interleave(factor, 3) if factor > 1 else images, nrow

    # pytorch_GAN_zoo's weights ---------------------------------------------------------------------

    upstream_format = "pytorch-gan-zoo"

    @classmethod
    def upstream_weights(cls, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Tensor]]:
        """Hparams and state dict from a pytorch_GAN_zoo ProGAN file, read as data by
        :func:`ganzoo.convert.read_gan_zoo`: ``{"config": {...}, "netG", "netD", "avgG"}``. ``avgG`` (the averaged
        generator the zoo samples from) becomes ``generator_ema`` and ``netG`` the generator; the architecture comes
        from the config (``depthScale0``, ``depthOtherScales``, ``latentVectorDim``, ``miniBatchStdDev``,
        ``perChannelNormalization``, ``dimOutput``, the loss for the output activation) and the zoo's ``alpha``
        (the weight of the old stage) becomes ``1 - alpha``."""
        config = data.get("config")
        if not isinstance(config, dict) or "depthScale0" not in config:
            raise ValueError(f"no pytorch_GAN_zoo config in this data (it holds {sorted(data)})")
        if config.get("categoryVectorDim", 0) or config.get("attribKeysOrder"):
            raise ValueError("this zoo model is conditional (categoryVectorDim/attribKeysOrder), which ganzoo's ProGAN "
                             "does not build")  # fmt: skip
        if not config.get("equalizedlR", True):
            raise ValueError(
                "this zoo model does not use the equalized learning rate, which ganzoo's ProGAN always does"
            )
        loss = config.get("lossCriterion", "WGANGP")
        if loss not in ("WGANGP", "Logistic", "MSE", "DCGAN"):
            raise ValueError(f"unknown pytorch_GAN_zoo loss {loss!r}: its output activation is not known")
        channels = [int(config["depthScale0"]), *(int(c) for c in config.get("depthOtherScales", []))]
        hparams = {
            "latent_dim": int(config.get("latentVectorDim", config.get("noiseVectorDim", 512))),
            "image_size": 4 * 2 ** (len(channels) - 1),
            "image_channels": int(config.get("dimOutput", 3)),
            "channels": channels,
            "pixel_norm": bool(config.get("perChannelNormalization", True)),
            "mbstd": bool(config.get("miniBatchStdDev", False)),
            "output_activation": "tanh" if loss in ("MSE", "DCGAN") else None,
            "ema_kimg": 11.1,  # the zoo's decay of 0.999 per step of 16 images
            # Its growing is over: a fine-tune trains at its final resolution.
            "fade_kimg": 0.0,
            "stable_kimg": 0.0,
        }
        if float(config.get("leakyReluLeak", 0.2)) != 0.2:
            raise ValueError(f"this zoo model uses a leaky ReLU slope of {config['leakyReluLeak']}; ganzoo's is 0.2")
        g_key = "avgG" if "avgG" in data else "netG"
        if g_key not in data:
            raise ValueError(f"no generator (avgG or netG) in this pytorch_GAN_zoo file (it holds {sorted(data)})")
        state = {f"generator_ema.{k}": v for k, v in _zoo_state(data[g_key], _G_KEYS).items()}
        state |= {f"generator.{k}": v for k, v in _zoo_state(data.get("netG", data[g_key]), _G_KEYS).items()}
        if "netD" in data:
            state |= {f"discriminator.{k}": v for k, v in _zoo_state(data["netD"], _D_KEYS).items()}
        state["alpha"] = torch.tensor(1.0 - float(config.get("alpha", 0.0)))
        return hparams, state


# pytorch_GAN_zoo's module names -> ganzoo's, for the generator and the discriminator.
_G_KEYS = {"formatLayer": "format", "groupScale0.0": "conv0", "scaleLayers": "blocks", "toRGBLayers": "to_rgb"}
_D_KEYS = {"fromRGBLayers": "from_rgb", "scaleLayers": "blocks", "groupScaleZero.0": "conv0",
           "groupScaleZero.1": "fc", "decisionLayer": "out"}  # fmt: skip


def _zoo_state(state: dict[str, Any], names: dict[str, str]) -> dict[str, Tensor]:
    """A zoo network's state dict under ganzoo's names: ``module.`` prefixes (DataParallel) and the ``.module.``
    segment of its equalized layers dropped (older files have none), the module names mapped by ``names``."""
    out = {}
    for key, value in state.items():
        if not isinstance(value, Tensor):
            continue
        key = key.removeprefix("module.").replace(".module.", ".")
        for old, new in names.items():
            if key == old or key.startswith(old + "."):
                key = new + key[len(old) :]
                break
        else:
            raise ValueError(f"unexpected key {key!r} in a pytorch_GAN_zoo network")
        out[key] = value.float()
    return out


register_pretrained(
    Pretrained(
        name="progan-mnist-32",
        variant="progan",
        dataset="mnist",
        resolution=32,
        license="apache-2.0",
        description="ProGAN grown 4 -> 8 -> 16 -> 32 on the MNIST training set (grayscale), 64 channels up to 8x8, "
        "fades and stable phases of 15 kimg, 135k images in 11.4 minutes on a 2-core CPU: small, honestly measured",
        folder="progan-mnist-32",
        sha256="e33bd3d6538ab6570ff797447fca6b9dd957faaf2d003b5547d2ef27f9d90879",
        recipe="progan-mnist-32",
        published="the ProGAN paper (Karras et al. 2018) reports an Inception Score of 8.80 on unconditional "
        "CIFAR-10, from networks of 512 channels trained through stages of 800k images for each fade and each "
        "stable phase (5.6M images through the 32x32 stage). This model is MNIST, not CIFAR-10: at these widths "
        "this 2-core CPU trained 135k images in 11.4 minutes (a 32x32 step of batch 32 at a quarter of the "
        "paper's width took 1.2 s on one thread), a budget at which digits come out recognisable; CIFAR-10 was "
        "not tried at it. It saw 135k images "
        "(2.4% of that schedule). Its IS is not measured here (IS needs the Inception classifier's 1008-way "
        "logits, which the offline Inception file lacks, and means little on digits): read its FID and KID beside "
        "the MNIST real-data row and the other MNIST models instead.",
    ),
)

_ZOO_URL = "https://dl.fbaipublicfiles.com/gan_zoo/PGAN/"
_ZOO_SOURCE = (
    "facebookresearch/pytorch_GAN_zoo (https://github.com/facebookresearch/pytorch_GAN_zoo, BSD-3-Clause; archived), "
    "its ProGAN re-implementation"
)

register_pretrained(
    *(
        Pretrained(
            name=f"progan-{name}",
            variant="progan",
            dataset=dataset,
            resolution=resolution,
            license="bsd-3-clause",
            url=_ZOO_URL + file,
            source=_ZOO_SOURCE,
            description=f"pytorch_GAN_zoo's official ProGAN on {what}, its averaged generator (avgG)",
        )
        for name, dataset, resolution, file, what in [
            ("celebahq-256", "celeba-hq", 256, "celebaHQ_s6_i80000-6196db68.pth", "CelebA-HQ at 256x256"),
            ("celebahq-512", "celeba-hq", 512, "celebaHQ16_december_s7_i96000-9c72988c.pth", "CelebA-HQ at 512x512"),
            ("dtd-128", "dtd", 128, "testDTD_s5_i96000-04efa39f.pth", "the Describable Textures Dataset at 128x128"),
            ("celeba-128", "celeba", 128, "celebaCropped_s5_i83000-2b0acc76.pth", "cropped CelebA at 128x128"),
        ]
    )
)
