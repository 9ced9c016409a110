"""Blocks that several variants use identically; a variant's own blocks stay in its model file."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def norm_layer(norm: str, channels: int) -> nn.Module:
    """The normalisation layer named ``norm``.

    ``"batch"``: affine, with running statistics (DCGAN, pix2pix). ``"instance"``: no affine and no running
    statistics, as junyanz' CycleGAN/pix2pix. ``"layer"``: over channels and pixels with a per-channel scale and
    shift (``GroupNorm(1, C)``; WGAN-GP's replacement for batch norm in a critic). ``"none"``: identity.
    """
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "layer":
        return nn.GroupNorm(1, channels)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"norm must be 'batch', 'instance', 'layer' or 'none', got {norm!r}")


def pixel_norm(x: Tensor, eps: float = 1e-8) -> Tensor:
    """``x / sqrt(mean(x^2) + eps)`` over the channels (dim 1): ProGAN's pixelwise feature normalisation (Karras et
    al. 2018, section 4.2), which StyleGAN applies to ``z``."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def upsample_nearest(x: Tensor) -> Tensor:
    """Nearest-neighbour upsampling by 2: each pixel becomes a 2x2 block."""
    return x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)


class EqualizedLinear(nn.Module):
    """The equalized learning rate (Karras et al. 2018, section 4.1): weights are stored as ``N(0, 1) / m`` and
    scaled at run time by ``g = gain * m / sqrt(fan_in)``, so every layer learns at the same speed under Adam.

    ``y = x (W g)^T + b m`` (StyleGAN's layers: ``m`` the learning-rate multiplier), or with ``scale_bias``
    ``y = (x W^T + b) g``, the bias scaled by the same constant (pytorch_GAN_zoo's ProGAN, whose weights load here).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        gain: float = 1.0,
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
        scale_bias: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = gain * lr_multiplier / math.sqrt(in_features)
        self.bias_gain = self.weight_gain if scale_bias else lr_multiplier

    def scaled(self, dtype: torch.dtype) -> tuple[Tensor, Tensor | None]:
        """The weight and bias as the layer applies them."""
        w = self.weight.to(dtype) * self.weight_gain
        return w, self.bias.to(dtype) * self.bias_gain if self.bias is not None else None

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, *self.scaled(x.dtype))


class EqualizedConv2d(EqualizedLinear):
    """A ``kernel_size`` convolution with the equalized learning rate of :class:`EqualizedLinear` (fan-in
    ``in_channels * kernel_size**2``), zero-padded to keep the size."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        bias: bool = True,
        gain: float = 1.0,
        scale_bias: bool = False,
    ) -> None:
        super().__init__(in_channels * kernel_size**2, out_channels, bias=bias, gain=gain, scale_bias=scale_bias)
        self.weight = nn.Parameter(self.weight.detach().reshape(out_channels, in_channels, kernel_size, kernel_size))
        self.padding = kernel_size // 2

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, *self.scaled(x.dtype), padding=self.padding)


class MinibatchStdLayer(nn.Module):
    """Appends the standard deviation of features over groups of samples (Karras et al. 2018, section 3),
    averaged over channels (in ``num_channels`` slices) and pixels, as extra channels.

    ``grouping="strided"`` (NVIDIA's): samples ``i, i + N/G, i + 2N/G, ...`` form a group of ``group_size``
    (``None``: the whole minibatch), the biased variance, and a batch that is not a multiple of the group size is an
    error. ``grouping="consecutive"`` (pytorch_GAN_zoo's): samples ``[kG, (k+1)G)`` form a group, the unbiased
    variance, the whole batch when it is not a multiple of ``G``, and zeros for a batch of one.
    """

    def __init__(self, group_size: int | None, num_channels: int = 1, grouping: str = "strided") -> None:
        super().__init__()
        if grouping not in ("strided", "consecutive"):
            raise ValueError(f"grouping must be 'strided' or 'consecutive', got {grouping!r}")
        if grouping == "consecutive" and num_channels != 1:
            raise ValueError("consecutive grouping (pytorch_GAN_zoo's) appends one channel")
        self.group_size, self.num_channels, self.grouping = group_size, num_channels, grouping

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size else n
        f = self.num_channels
        # In fp32 whatever the input: in fp16 the 1e-8 underflows, and sqrt'(0) makes R1's double backward infinite.
        if self.grouping == "consecutive":
            g = g if n % g == 0 else n
            if g == 1:
                return torch.cat([x, x.new_zeros(n, 1, h, w)], dim=1)
            y = x.float().reshape(-1, g, c, h, w).var(dim=1).add(1e-8).sqrt()  # [N/G, C, H, W]
            y = y.mean(dim=(1, 2, 3)).reshape(-1, 1, 1, 1, 1).expand(-1, g, 1, h, w).reshape(n, 1, h, w)
            return torch.cat([x, y.to(x.dtype)], dim=1)
        if n % g:
            raise ValueError(f"minibatch std: batch {n} is not a multiple of the group size {g}")
        y = x.float().reshape(g, -1, f, c // f, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt()  # std over each group
        y = y.mean(dim=(2, 3, 4)).reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y.to(x.dtype)], dim=1)
