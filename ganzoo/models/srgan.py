"""SRGAN and SRResNet: single-image super-resolution; ESRGAN's RRDB generator and the official ESRGAN weights.

Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial Network", CVPR 2017,
arXiv 1609.04802. Wang et al., "ESRGAN: Enhanced Super-Resolution Generative Adversarial Networks", ECCV
workshops 2018, arXiv 1809.00219; Wang et al., "Real-ESRGAN", ICCV workshops 2021, arXiv 2107.10833. References
studied: Lornatang/SRGAN-PyTorch (Apache-2.0) for SRGAN, xinntao/ESRGAN and XPixelGroup/BasicSR (Apache-2.0) and
xinntao/Real-ESRGAN (BSD-3) for the RRDB network and its key layouts; the RRDB modules here keep BasicSR's
parameter names, so its files load without a key map.

- SRResNet generator: ``9x9 conv, PReLU`` then ``num_blocks`` (16) residual blocks ``x + BN(conv(PReLU(BN(conv
  x))))``, a ``3x3 conv, BN`` joined to the first features by a skip, ``log2(scale)`` sub-pixel steps ``conv to 4C,
  PixelShuffle(2), PReLU``, and a ``9x9 conv`` to RGB.
- RRDB generator (ESRGAN): ``num_blocks`` (23) residual-in-residual dense blocks, each three dense blocks of five
  3x3 convs (``growth`` 32 new channels per conv, LeakyReLU 0.2) with residual scaling ``x + 0.2 * f(x)``, no batch
  norm; nearest-neighbour x2 upsampling + conv twice. Real-ESRGAN's x2 and x1 models pixel-unshuffle the input by
  2 or 4 first, so the network body always upsamples by 4.
- Discriminator (SRGAN): eight 3x3 convs (64 to 512 channels, stride 2 every second, BN after the first, LeakyReLU
  0.2), then ``Dense(1024), LeakyReLU, Dense(1)`` on the flattened features (``d_head="dense"``, the paper's, for
  ``image_size`` crops), or the same head as 1x1 convs after global average pooling (``"pooled"``: any size, and
  18.9 M parameters fewer at 96 px). Logits.
- Objective (SRGAN): ``l_SR = l_content + 1e-3 * l_adv`` with ``l_adv = -log D(G(x_LR))`` (non-saturating) and the
  content loss either the pixel MSE (SRResNet, SRGAN-MSE) or ``||phi_ij(I_HR) - phi_ij(G(I_LR))||^2`` on VGG19
  features after the ``j``-th conv (and its ReLU) before the ``i``-th max-pool (VGG22, VGG54), scaled by
  ``1 / 12.75`` as the paper does. ``adversarial_weight = 0`` trains SRResNet: pixel MSE alone, no discriminator.
- Weights: ESRGAN's and Real-ESRGAN's released generators, in any of their three key layouts, load with
  :meth:`SRGAN.upstream_weights` (entries ``esrgan-x4``, ``esrgan-psnr-x4``, ``realesrgan-x4plus``, ...).

Images are in [-1, 1] outside the generators; inside, every generator works on [0, 1] as the reference code does
(``G(x) = 2 g((x + 1) / 2) - 1``), so upstream weights run unchanged.
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ganzoo import losses
from ganzoo.gan import ImageToImageGAN
from ganzoo.registry import Pretrained, register_gan, register_pretrained


class SRResidualBlock(nn.Module):
    """``x + BN(conv(PReLU(BN(conv(x)))))``, 3x3 convs of ``channels``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.PReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """The SRGAN paper's generator on [0, 1] images: ``[N, C, H, W] -> [N, C, scale H, scale W]``."""

    def __init__(self, scale: int = 4, channels: int = 3, num_features: int = 64, num_blocks: int = 16) -> None:
        super().__init__()
        if scale not in (2, 4, 8):
            raise ValueError(f"SRResNet upscales by 2, 4 or 8 (sub-pixel x2 steps), not {scale}")
        c = num_features
        self.head = nn.Sequential(nn.Conv2d(channels, c, 9, padding=4), nn.PReLU())
        self.body = nn.Sequential(*(SRResidualBlock(c) for _ in range(num_blocks)))
        self.body_out = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        self.upsample = nn.Sequential(
            *(nn.Sequential(nn.Conv2d(c, 4 * c, 3, padding=1), nn.PixelShuffle(2), nn.PReLU())
              for _ in range(int(math.log2(scale))))
        )  # fmt: skip
        self.tail = nn.Conv2d(c, channels, 9, padding=4)

    def forward(self, x: Tensor) -> Tensor:
        features = self.head(x)
        return self.tail(self.upsample(features + self.body_out(self.body(features))))


class ResidualDenseBlock(nn.Module):
    """Five 3x3 convs, each seeing the block input and every earlier conv's output (``growth`` channels each),
    LeakyReLU 0.2 after all but the last: ``x + 0.2 * conv5(cat(x, x1, ..., x4))``."""

    def __init__(self, channels: int = 64, growth: int = 32) -> None:
        super().__init__()
        for i in range(5):
            out = growth if i < 4 else channels
            setattr(self, f"conv{i + 1}", nn.Conv2d(channels + i * growth, out, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for i in range(1, 5):
            features.append(F.leaky_relu(getattr(self, f"conv{i}")(torch.cat(features, 1)), 0.2))
        return x + 0.2 * self.conv5(torch.cat(features, 1))


class RRDB(nn.Module):
    """Residual in residual dense block: ``x + 0.2 * rdb3(rdb2(rdb1(x)))``."""

    def __init__(self, channels: int = 64, growth: int = 32) -> None:
        super().__init__()
        self.rdb1, self.rdb2, self.rdb3 = (ResidualDenseBlock(channels, growth) for _ in range(3))

    def forward(self, x: Tensor) -> Tensor:
        return x + 0.2 * self.rdb3(self.rdb2(self.rdb1(x)))


class RRDBNet(nn.Module):
    """ESRGAN's generator on [0, 1] images, BasicSR's parameter names. ``scale`` 4 runs the body on the input; 2
    and 1 (Real-ESRGAN's x2plus) pixel-unshuffle the input by ``4 / scale`` first, as upstream does."""

    def __init__(
        self, scale: int = 4, channels: int = 3, num_features: int = 64, num_blocks: int = 23, growth: int = 32
    ) -> None:
        super().__init__()
        if scale not in (1, 2, 4):
            raise ValueError(f"the RRDB network upscales by 1, 2 or 4, not {scale}")
        self.unshuffle = 4 // scale
        c = num_features
        self.conv_first = nn.Conv2d(channels * self.unshuffle**2, c, 3, padding=1)
        self.body = nn.Sequential(*(RRDB(c, growth) for _ in range(num_blocks)))
        self.conv_body = nn.Conv2d(c, c, 3, padding=1)
        self.conv_up1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv_up2 = nn.Conv2d(c, c, 3, padding=1)
        self.conv_hr = nn.Conv2d(c, c, 3, padding=1)
        self.conv_last = nn.Conv2d(c, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        if self.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.unshuffle)
        features = self.conv_first(x)
        features = features + self.conv_body(self.body(features))
        for conv in (self.conv_up1, self.conv_up2):
            features = F.leaky_relu(conv(F.interpolate(features, scale_factor=2, mode="nearest")), 0.2)
        return self.conv_last(F.leaky_relu(self.conv_hr(features), 0.2))


class SRGenerator(nn.Module):
    """An SR network ``g`` on [0, 1] images run on [-1, 1] ones: ``G(x) = 2 g((x + 1) / 2) - 1``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x * 0.5 + 0.5) * 2.0 - 1.0


class SRDiscriminator(nn.Module):
    """The SRGAN discriminator: ``[N, C, H, W]`` images to ``[N]`` logits.

    Eight 3x3 convs of ``ndf * (1, 1, 2, 2, 4, 4, 8, 8)`` channels, stride 2 at the even ones, batch norm after all
    but the first, LeakyReLU 0.2; then the head: ``"dense"`` flattens the ``image_size / 16`` square of features
    into ``Dense(1024), LeakyReLU, Dense(1)`` (the paper's; inputs of exactly ``image_size``), ``"pooled"`` applies
    the same two layers as 1x1 convs to the spatial mean.
    """

    def __init__(self, channels: int = 3, ndf: int = 64, image_size: int = 96, head: str = "dense") -> None:
        super().__init__()
        if head not in ("dense", "pooled"):
            raise ValueError(f"d_head must be 'dense' or 'pooled', got {head!r}")
        if head == "dense" and image_size % 16:
            raise ValueError(f"the dense head needs image_size divisible by 16, got {image_size}")
        widths = [ndf * m for m in (1, 1, 2, 2, 4, 4, 8, 8)]
        layers: list[nn.Module] = []
        for i, out in enumerate(widths):
            layers.append(nn.Conv2d(widths[i - 1] if i else channels, out, 3, stride=1 + i % 2, padding=1, bias=i == 0))
            layers += [nn.BatchNorm2d(out)] if i else []
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        self.features = nn.Sequential(*layers)
        self.image_size, self.head_kind = image_size, head
        flat = widths[-1] * (image_size // 16) ** 2 if head == "dense" else widths[-1]
        self.head = nn.Sequential(nn.Linear(flat, 1024), nn.LeakyReLU(0.2, inplace=True), nn.Linear(1024, 1))

    def forward(self, x: Tensor) -> Tensor:
        h = self.features(x)
        if self.head_kind == "dense":
            if x.shape[-2:] != (self.image_size, self.image_size):
                raise ValueError(f"the dense head takes {self.image_size}x{self.image_size} images, got "
                                 f"{x.shape[-2]}x{x.shape[-1]}")  # fmt: skip
            h = h.flatten(1)
        else:
            h = h.mean((2, 3))
        return self.head(h).squeeze(1)


VGG_LAYERS = {"vgg22": 9, "vgg54": 36}  # torchvision vgg19().features[:n] ends after relu2_2 / relu5_4


class VGGFeatures(nn.Module):
    """``phi_ij`` of the SRGAN paper: VGG19's features up to the ReLU after conv ``i_j`` (``"vgg22"``: 2_2,
    ``"vgg54"``: 5_4), on [-1, 1] images normalised as ImageNet's, divided by 12.75 as in the paper.

    ``pretrained`` fetches torchvision's ImageNet weights (``VGG19_Weights.IMAGENET1K_V1``, into torch's hub cache)
    on first use; ``False`` keeps random weights (tests)."""

    def __init__(self, layer: str = "vgg54", pretrained: bool = True) -> None:
        super().__init__()
        from torchvision.models import VGG19_Weights
        from torchvision.models.vgg import cfgs, make_layers

        if layer not in VGG_LAYERS:
            raise ValueError(f"content_loss {layer!r}: the VGG layers are {', '.join(VGG_LAYERS)}")
        features = make_layers(cfgs["E"])  # VGG19's convolutional part, without the 120 M-parameter classifier
        if pretrained:
            state = VGG19_Weights.IMAGENET1K_V1.get_state_dict(progress=True)
            features.load_state_dict({k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")})
        self.features = features[: VGG_LAYERS[layer]].eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.features(((x * 0.5 + 0.5) - self.mean) / self.std) / 12.75


@register_gan(
    "srgan",
    task="super-resolution",
    tiny=dict(image_size=16, scale=2, num_features=4, num_blocks=1, ndf=2, d_head="dense"),
)
class SRGAN(ImageToImageGAN):
    """SRGAN (and SRResNet, ``adversarial_weight=0``) for ``scale``x super-resolution; the RRDB generator of ESRGAN
    with ``generator="rrdb"``.

    Training batches are ``(LR, HR)`` pairs in [-1, 1] (:class:`ganzoo.data.SuperResolution`). Each step: the
    discriminator on ``(HR, G(LR))`` with the logistic loss, then the generator on ``content(G(LR), HR) +
    adversarial_weight * softplus(-D(G(LR)))``. An SRGAN starts from an SRResNet's generator: the recipe names it
    with the :class:`ganzoo.callbacks.InitFrom` callback.

    Args:
        scale: the upscaling factor.
        image_size: the HR crop side the model trains on (the paper's 96); the dense discriminator head's input.
        image_channels: 3 (RGB) or 1.
        generator: ``"srresnet"`` (the paper's) or ``"rrdb"`` (ESRGAN's).
        num_features, num_blocks: the generator's width and depth (16 residual blocks; ESRGAN: 23 RRDBs).
        growth: channels each dense conv adds (RRDB only).
        ndf, d_head: the discriminator's first width and head (see :class:`SRDiscriminator`).
        adversarial_weight: weight of the adversarial term (the paper's 1e-3); 0 trains SRResNet, with no
            discriminator.
        content_loss: ``"mse"`` (pixels), ``"vgg22"`` or ``"vgg54"`` (VGG19 features).
        vgg_pretrained: load ImageNet weights into the VGG19 of the content loss (a download on first use).
        lr, betas: Adam's, for both networks (the paper's 1e-4, (0.9, 0.999)).
        lr_drop_kimg: thousands of images after which the learning rate drops tenfold (the paper's 1e5 updates of
            16 images: 1600); none by default.
        ema_kimg, ema_rampup: an EMA of the generator (none by default, as the paper).
    """

    def __init__(
        self,
        scale: int = 4,
        image_size: int = 96,
        image_channels: int = 3,
        generator: str = "srresnet",
        num_features: int = 64,
        num_blocks: int = 16,
        growth: int = 32,
        ndf: int = 64,
        d_head: str = "dense",
        adversarial_weight: float = 1e-3,
        content_loss: str = "mse",
        vgg_pretrained: bool = True,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        lr_drop_kimg: float | None = None,
        ema_kimg: float | None = None,
        ema_rampup: float | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if content_loss not in ("mse", *VGG_LAYERS):
            raise ValueError(f"content_loss must be 'mse', 'vgg22' or 'vgg54', got {content_loss!r}")
        if image_size % scale:
            raise ValueError(f"image_size {image_size} is not a multiple of scale {scale}")
        if generator == "srresnet":
            net: nn.Module = SRResNet(scale, image_channels, num_features, num_blocks)
        elif generator == "rrdb":
            net = RRDBNet(scale, image_channels, num_features, num_blocks, growth)
        else:
            raise ValueError(f"generator must be 'srresnet' or 'rrdb', got {generator!r}")
        self.generator = SRGenerator(net)
        if adversarial_weight:
            self.discriminator = SRDiscriminator(image_channels, ndf, image_size, d_head)
        else:  # SRResNet: the generator alone
            self.ddp_networks = ("generator",)
        # Kept out of the state dict and of .parameters(): a fixed loss network, not part of the model.
        self._content: tuple[nn.Module, ...] = (
            (VGGFeatures(content_loss, vgg_pretrained),) if content_loss in VGG_LAYERS else ()
        )
        self.init_ema(ema_kimg, ema_rampup)

    @property
    def output_scale(self) -> int:
        return int(self.hparams.scale)

    @property
    def objective(self) -> str:
        hp = self.hparams
        layer = {"vgg22": "relu2_2", "vgg54": "relu5_4"}.get(hp.content_loss)
        content = f"MSE of VGG19 {layer} features / 12.75 ({hp.content_loss})" if layer else "pixel MSE"
        if not hp.adversarial_weight:
            return f"content: {content}; no discriminator (SRResNet)"
        return (f"content: {content} + {hp.adversarial_weight:g} x adversarial (non-saturating; discriminator with "
                f"the {hp.d_head} head)")  # fmt: skip

    def channels(self, direction: str) -> int:
        return int(self.hparams.image_channels)

    def content_loss(self, fake: Tensor, real: Tensor) -> Tensor:
        """The content term: pixel MSE, or the MSE of VGG19 features (on the VGG's own device and dtype)."""
        if not self._content:
            return F.mse_loss(fake, real)
        vgg = self._content[0].to(fake.device)
        return F.mse_loss(vgg(fake), vgg(real))

    def training_step(self, batch: Any, batch_idx: int) -> None:
        low, high = batch
        opts = self.optimizers()
        opt_g, opt_d = (opts, None) if not isinstance(opts, list) else opts
        fake = self.net("generator")(low)
        logs: dict[str, Tensor] = {}
        if opt_d is not None:
            D = self.net("discriminator")
            with self.toggled_optimizer(opt_d):
                logs["loss/d"] = losses.d_logistic(D(high), D(fake.detach()))
                self.update(opt_d, logs["loss/d"])
        with self.toggled_optimizer(opt_g):
            logs["loss/content"] = self.content_loss(fake, high)
            g_loss = logs["loss/content"]
            if opt_d is not None:
                logs["loss/g"] = losses.g_nonsaturating(D(fake))
                g_loss = g_loss + self.hparams.adversarial_weight * logs["loss/g"]
            self.update(opt_g, g_loss)
        self.log_dict(logs, prog_bar=True)

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        nets = [self.generator] + ([self.discriminator] if hp.adversarial_weight else [])
        opts = [torch.optim.Adam(n.parameters(), lr=hp.lr, betas=tuple(hp.betas)) for n in nets]
        if hp.lr_drop_kimg is None:
            return opts
        drop = lambda _: 0.1 if self.images_seen >= 1000 * hp.lr_drop_kimg else 1.0  # noqa: E731
        return opts, [torch.optim.lr_scheduler.LambdaLR(o, drop) for o in opts]

    @property
    def size_multiple(self) -> int:
        # Real-ESRGAN's x2 and x1 networks pixel-unshuffle their input by 2 or 4: translate pads to that multiple.
        return int(getattr(self.generator.net, "unshuffle", 1))

    # ESRGAN's and Real-ESRGAN's weights ------------------------------------------------------------

    upstream_format = "torch"

    @classmethod
    def upstream_weights(cls, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Tensor]]:
        """Hparams and state dict from an RRDB generator file, read as data (``torch.load(weights_only=True)``), in
        any of the three layouts its authors released:

        - xinntao/ESRGAN's (``RRDB_ESRGAN_x4.pth``, ``RRDB_PSNR_x4.pth``): a plain state dict of ``conv_first``,
          ``RRDB_trunk.<i>.RDB<1-3>.conv<1-5>``, ``trunk_conv``, ``upconv1``, ``upconv2``, ``HRconv``, ``conv_last``;
        - BasicSR's (``ESRGAN_SRx4_DF2KOST_official-ff704c30.pth``): the same weights renamed ``body.<i>.rdb<j>``,
          ``conv_body``, ``conv_up1``, ``conv_up2``, ``conv_hr`` (the names :class:`RRDBNet` keeps), plain or
          wrapped as ``{"params": ...}`` / ``{"params_ema": ...}``;
        - Real-ESRGAN's (``RealESRGAN_x4plus.pth``, ``RealESRGAN_x2plus.pth``, ``RealESRGAN_x4plus_anime_6B.pth``):
          BasicSR's names in ``{"params_ema": ...}`` (preferred, as Real-ESRGAN's inference does) or
          ``{"params": ...}``; the x2 model's ``conv_first`` takes the 12 channels of the 2x pixel-unshuffled input.

        The architecture comes from the shapes: width from ``conv_first``, growth from ``conv1``, blocks from the
        ``body`` indices, channels from ``conv_last``, and the scale from ``conv_first``'s input channels over the
        image channels (1: x4, 4: x2, 16: x1). The releases hold the generator alone: the model is built without a
        discriminator (``adversarial_weight=0``), as an SRResNet-style generator-only SRGAN."""
        state = rrdb_state(data)
        return rrdb_hparams(state), {f"generator.net.{k}": v for k, v in state.items()}


# xinntao/ESRGAN's names -> BasicSR's (as BasicSR's scripts/model_conversion/convert_models.py maps them).
_ESRGAN_NAMES = [
    (re.compile(r"^RRDB_trunk\.(\d+)\.RDB([123])\."), r"body.\1.rdb\2."),
    (re.compile(r"^trunk_conv\."), "conv_body."),
    (re.compile(r"^upconv([12])\."), r"conv_up\1."),
    (re.compile(r"^HRconv\."), "conv_hr."),
]


def rrdb_state(data: Any) -> dict[str, Tensor]:
    """An RRDB generator's state dict under BasicSR's names from an upstream file's data: ``{"params_ema"}`` (else
    ``{"params"}``) unwrapped, ``module.`` (DataParallel) and ``_orig_mod.`` (torch.compile) prefixes dropped, and
    ESRGAN's original names renamed."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a state dict of an RRDB generator, found a {type(data).__name__}")
    data = next((data[k] for k in ("params_ema", "params") if isinstance(data.get(k), dict)), data)
    state = {}
    for key, value in data.items():
        if not isinstance(value, Tensor):
            continue
        while key.startswith(("module.", "_orig_mod.")):
            key = key.split(".", 1)[1]
        for pattern, name in _ESRGAN_NAMES:
            key = pattern.sub(name, key)
        state[key] = value
    return state


def rrdb_hparams(state: dict[str, Tensor]) -> dict[str, Any]:
    """SRGAN's hparams for the RRDB network whose BasicSR-named state dict is ``state`` (see
    :meth:`SRGAN.upstream_weights`)."""
    first, last, dense = (state.get(f"{k}.weight") for k in ("conv_first", "conv_last", "body.0.rdb1.conv1"))
    if first is None or last is None or dense is None:
        found = ", ".join(sorted(state)[:4]) + (" ..." if len(state) > 4 else "") if state else "no tensors"
        raise ValueError(
            f"not an ESRGAN/Real-ESRGAN RRDB generator: found {found}; expected conv_first, body.<i>.rdb<1-3>."
            "conv<1-5> (BasicSR, Real-ESRGAN) or RRDB_trunk.<i>.RDB<1-3>.conv<1-5> (ESRGAN), ..., conv_last"
        )
    channels, in_channels = int(last.shape[0]), int(first.shape[1])
    scale = {1: 4, 4: 2, 16: 1}.get(in_channels // channels) if in_channels % channels == 0 else None
    if scale is None:  # the input is pixel-unshuffled by 1, 2 or 4: 1, 4 or 16 times the image channels
        raise ValueError(f"conv_first takes {in_channels} channels and conv_last gives {channels}: not 1, 4 or 16 "
                         "times as many, as an RRDB network of scale 4, 2 or 1 has")  # fmt: skip
    return {
        "generator": "rrdb",
        "scale": scale,
        "image_channels": channels,
        "num_features": int(first.shape[0]),
        "num_blocks": len({k.split(".")[1] for k in state if k.startswith("body.")}),
        "growth": int(dense.shape[0]),
        "adversarial_weight": 0.0,
    }


# The authors' released RRDB generators, converted at first load (generators only: no discriminator). Each URL's
# name carries the first digits of its sha256 where the release gave one (download_url checks them); the other
# files are pinned at their first download.
_REAL_ESRGAN = "https://github.com/xinntao/Real-ESRGAN/releases/download/"
_ESRGAN_SOURCE = "xinntao/ESRGAN (Wang et al. 2018), in BasicSR's layout (XPixelGroup/BasicSR)"
_REAL_ESRGAN_SOURCE = "xinntao/Real-ESRGAN (Wang et al. 2021)"
# METRICS.md's mmagic rows are mmagic's own RRDB models (DIV2K, 1000k / 400k iterations), not these files.
_MMAGIC = ("mmagic's own {what}, trained on DIV2K, scores Set5 {set5}, Set14 {set14} (PSNR dB / SSIM on RGB, 4-px "
           "border crop); these are the authors' weights (trained on DF2K{ost}), not measured there")  # fmt: skip

register_pretrained(
    Pretrained(
        name="esrgan-x4",
        variant="srgan",
        dataset="DF2K-OST",
        license="apache-2.0",
        url=f"{_REAL_ESRGAN}v0.1.1/ESRGAN_SRx4_DF2KOST_official-ff704c30.pth",
        source=_ESRGAN_SOURCE,
        description="the ESRGAN paper's final x4 model (RRDB_ESRGAN_x4.pth, 23 RRDBs of 64 channels, trained on DIV2K, "
        "Flickr2K and OST with MATLAB-bicubic LR), as BasicSR converted it; released with Real-ESRGAN v0.1.1",
        published=_MMAGIC.format(what="ESRGAN", set5="28.2700 / 0.7778", set14="24.6328 / 0.6491", ost=" + OST"),
    ),
    Pretrained(
        name="esrgan-psnr-x4",
        variant="srgan",
        dataset="DF2K",
        license="apache-2.0",
        # No GitHub release holds it: ESRGAN's README links a Google Drive folder (RRDB_PSNR_x4.pth); this is the
        # Drive file of BasicSR's conversion that BasicSR's scripts/download_pretrained_models.py fetches. The
        # fragment, which urllib never sends, names the file: its "-150ff491" is the sha256 prefix download_url
        # checks, so a Drive page served instead of the file is refused, not kept.
        url="https://drive.google.com/uc?export=download&id=1swaV5iBMFfg-DL6ZyiARztbhutDCWXMM"
        "#ESRGAN_PSNR_SRx4_DF2K_official-150ff491.pth",
        source=_ESRGAN_SOURCE,
        description="ESRGAN's PSNR-oriented x4 RRDB network (RRDB_PSNR_x4.pth: L1 loss only, trained on DF2K with "
        "MATLAB-bicubic LR), as BasicSR converted it. Not on a GitHub release: the ESRGAN README links a Google "
        "Drive folder (https://drive.google.com/drive/u/0/folders/17VYV_SoZZesU6mbxz2dMAIccSSlqLecY); ganzoo "
        "downloads BasicSR's Google Drive file of it (ESRGAN_PSNR_SRx4_DF2K_official-150ff491.pth)",
        published=_MMAGIC.format(what="ESRGAN-PSNR", set5="30.6428 / 0.8559", set14="27.0543 / 0.7447", ost=""),
    ),
    *(
        Pretrained(
            name=name,
            variant="srgan",
            dataset=dataset,
            license="bsd-3-clause",
            url=f"{_REAL_ESRGAN}{release}/{file}",
            source=_REAL_ESRGAN_SOURCE,
            description=f"Real-ESRGAN's {what}, trained on synthetic real-world degradations (blur, noise, "
            "resizing, JPEG) rather than bicubic LR: not comparable on the bicubic benchmarks",
        )
        for name, dataset, release, file, what in [
            ("realesrgan-x4plus", "DF2K-OST", "v0.1.0", "RealESRGAN_x4plus.pth", "x4 model for general images"),
            ("realesrgan-x2plus", "DF2K-OST", "v0.2.1", "RealESRGAN_x2plus.pth", "x2 model for general images"),
            # 6 RRDBs; Real-ESRGAN's docs do not name the anime model's training images.
            ("realesrgan-x4plus-anime", "anime", "v0.2.2.4", "RealESRGAN_x4plus_anime_6B.pth", "x4 anime model"),
        ]
    ),
)

# Trained here by its recipe on BSD100's HR images (Set5 and Set14 unseen), so the leaderboard marks BSD100's scores.
_PAPER = "(PSNR dB / SSIM on the Y channel, 4 px shaved; the paper's copies of the benchmarks)"
register_pretrained(
    Pretrained(
        name="srresnet-x4",
        variant="srgan",
        dataset="bsd100",
        license="other",
        description="SRResNet (the SRGAN paper's generator, 16 residual blocks of 64 channels) trained here on the "
        "pixel MSE for 4x super-resolution, from 96x96 crops of BSD100's 100 HR images (an academic benchmark: "
        "research use) with MATLAB-bicubic LR, on a 2-core CPU (two threads)",
        folder="srresnet-x4",
        sha256="1d72b1806952dc4e877a956032288a5135d0ce4faab1f0107349dad6a8fa020f",
        recipe="srresnet-x4",
        seen=("BSD100",),
        published=f"The SRGAN paper's SRResNet (1e6 updates of 16 ImageNet crops): Set5 32.05 / 0.902, Set14 28.49 "
        f"/ 0.818, BSD100 27.58 / 0.762 {_PAPER}",
    ),
    Pretrained(
        name="srgan-x4",
        variant="srgan",
        dataset="bsd100",
        license="other",
        description="SRGAN (the SRGAN paper's SRGAN-MSE: pixel MSE plus 1e-3 times the adversarial term) trained here "
        "for 4x super-resolution, started from srresnet-x4's generator as the paper starts from its SRResNet, on "
        "96x96 crops of BSD100's 100 HR images (an academic benchmark: research use) with MATLAB-bicubic LR, on a "
        "2-core CPU (two threads), 6 kimg. Against srresnet-x4 it gives up fidelity for sharpness, as the paper's "
        "SRGAN does: PSNR 0.39 dB lower on Set5 and 0.27 dB on Set14 (still above bicubic), SSIM 0.79 and 0.70 "
        "(below bicubic's 0.81 and 0.71), and detail 0.87 and 0.66 of the HR images' local contrast against "
        "srresnet-x4's 0.73 and 0.54: edges and textures come out sharper, but the texture it adds is invented, not "
        "recovered, and at this short training some of it is a faint grid from the sub-pixel layers. Use srresnet-x4 "
        "for faithful pixels",
        folder="srgan-x4",
        sha256="1a4b918c65f7c764c9710e36489e75fd8c87e50592c3f54a1f09eed51ad7eb6c",
        recipe="srgan-x4",
        seen=("BSD100",),
        published=f"The SRGAN paper's SRGAN with the VGG54 content loss (2e5 updates of 16 ImageNet crops after its "
        f"SRResNet; this checkpoint is its MSE variant): Set5 29.40 / 0.847, Set14 26.02 / 0.740, BSD100 25.16 "
        f"{_PAPER}",
    ),
)
