"""StyleGAN2: Karras, Laine, Aittala, Hellsten, Lehtinen and Aila, "Analyzing and Improving the Image Quality of
StyleGAN", CVPR 2020, arXiv:1912.04958; with the configuration options of StyleGAN2-ADA (Karras et al., "Training
Generative Adversarial Networks with Limited Data", NeurIPS 2020, arXiv:2006.06676).

Generator ``G(z, c) = synthesis(mapping(z, c))``:

- mapping: ``z`` normalised to unit second moment (and an embedding of the one-hot label ``c``, normalised the same
  way, concatenated), then ``num_layers`` fully connected layers with leaky ReLU at a learning-rate multiplier of
  0.01, giving ``w``, broadcast to the ``num_ws`` style inputs. Its running mean ``w_avg`` is tracked in training;
  truncation is ``w' = w_avg + psi (w - w_avg)`` on the first ``truncation_cutoff`` styles.
- synthesis: a learned 4x4 constant, then per resolution a block of two 3x3 modulated convolutions (the first
  upsampling by a transposed convolution and a [1, 3, 3, 1] FIR blur), per-pixel noise scaled by a learned
  strength, and a ``toRGB`` 1x1 modulated convolution whose outputs are summed over resolutions ("skip").
  Modulation and demodulation (section 2.2): ``w'_ijk = s_i w_ijk``, ``w''_ijk = w'_ijk / sqrt(sum_ik w'^2 + 1e-8)``.
- every weight is stored unscaled and multiplied at run time by ``lr_multiplier / sqrt(fan_in)`` (equalized
  learning rate, Karras et al. 2018); leaky ReLU outputs are scaled by ``sqrt(2)``.

Discriminator ``D(img, c)``: residual blocks (``resnet``, the paper's config E/F) or plain ones (``orig``), each two
3x3 convolutions with a blurred stride-2 downsampling and a 1x1 skip, scaled by ``sqrt(1/2)``; minibatch standard
deviation before a 3x3 convolution and two fully connected layers; a conditional D projects its output on a
mapped label embedding (Miyato and Koyama 2018).

Training (``StyleGAN2``): the non-saturating logistic loss, lazy R1 on reals every ``d_reg_interval`` batches and
lazy path-length regularisation every ``g_reg_interval`` batches (the NVlabs phases Gmain, Greg, Dmain, Dreg, with
Adam's lr and betas adjusted for the lazy interval), style mixing, and a generator EMA with a half-life in images.

Parameter and buffer names follow NVIDIA's stylegan2-ada-pytorch exactly, so its state dicts load without a key
map, and ``G.mapping``, ``G.synthesis``, ``G(z, c)`` and ``D(img, c)`` keep its call signatures. This file was
written from the papers and the numerical description in ganzoo's UPSTREAM notes; NVIDIA's code (NVIDIA Source Code
License, non-commercial) was read to learn its conventions and none of it is reproduced.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo import losses
from ganzoo.gan import LatentGAN
from ganzoo.layers import EqualizedConv2d, EqualizedLinear, MinibatchStdLayer, pixel_norm
from ganzoo.registry import Pretrained, register_gan, register_pretrained

SQRT2 = math.sqrt(2.0)


# --------------------------------------------------------------------------------------------------
# Resampling with a separable FIR filter


def fir_filter(taps: tuple[int, ...] = (1, 3, 3, 1)) -> Tensor:
    """The 2-D filter ``outer(f, f) / sum``: ``[k, k]``, summing to 1."""
    f = torch.tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


def _filter(x: Tensor, f: Tensor, pad: tuple[int, int, int, int], gain: float = 1.0) -> Tensor:
    # Depthwise 2-D convolution of every channel with the (symmetric) filter f, after zero padding (l, r, t, b).
    c = x.shape[1]
    weight = (f * gain).to(x.dtype)[None, None].expand(c, 1, *f.shape)
    return F.conv2d(F.pad(x, pad), weight, groups=c)


def upsample2d(x: Tensor, f: Tensor) -> Tensor:
    """x2 upsampling: zero insertion, then the FIR filter with gain 4 (to keep the mean); ``[N, C, 2H, 2W]``."""
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, h, 2, w, 2)
    up[:, :, :, 0, :, 0] = x
    return _filter(up.reshape(n, c, 2 * h, 2 * w), f, (2, 1, 2, 1), gain=4.0)


def _bias_act(x: Tensor, bias: Tensor | None, activation: str, gain: float, clamp: float | None) -> Tensor:
    # (x + b) -> activation -> * gain -> clamp to +-clamp; lrelu carries its own sqrt(2).
    if bias is not None:
        x = x + bias.to(x.dtype).reshape([1, -1] + [1] * (x.ndim - 2))
    if activation == "lrelu":
        x = F.leaky_relu(x, 0.2) * (SQRT2 * gain)
    elif gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


# --------------------------------------------------------------------------------------------------
# Layers


class FullyConnectedLayer(EqualizedLinear):
    """``act(x W^T g + b m)`` with the equalized gain ``g = lr_multiplier / sqrt(in)`` and ``m = lr_multiplier``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__(in_features, out_features, bias=bias, lr_multiplier=lr_multiplier, bias_init=bias_init)
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        w, b = self.scaled(x.dtype)
        if self.activation == "linear":
            return F.linear(x, w, b)
        return _bias_act(x @ w.t(), b, self.activation, 1.0, None)


class Conv2dLayer(EqualizedConv2d):
    """An equalized-lr convolution of the discriminator, optionally downsampling by 2 (blur, then stride 2)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        bias: bool = True,
        activation: str = "linear",
        down: int = 1,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, bias=bias)
        self.activation, self.down, self.conv_clamp = activation, down, conv_clamp
        self.register_buffer("resample_filter", fir_filter())

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        if self.down == 2:
            # Blur with the filter's support shifted so the stride-2 taps stay centred: pad (k - 1) // 2 + 1 a side.
            p = self.padding + 1
            x = F.conv2d(_filter(x, self.resample_filter, (p, p, p, p)), w, stride=2)
        else:
            x = F.conv2d(x, w, padding=self.padding)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return _bias_act(x, self.bias, self.activation, gain, clamp)


def modulated_conv2d(
    x: Tensor, weight: Tensor, styles: Tensor, *, demodulate: bool = True, up: bool = False, padding: int = 0
) -> Tensor:
    """A convolution whose weights are scaled per sample by ``styles`` ``[N, in]`` and, with ``demodulate``,
    normalised per output channel; ``up`` makes it a stride-2 transposed convolution (the blur follows in the
    caller). Computed by scaling the activations instead of the weights, ``conv(x * s, W) * d`` with
    ``d_j = (sum_ik (s_i W_jik)^2 + 1e-8)^(-1/2)``: the same numbers as a per-sample grouped convolution, and one
    ordinary batched convolution."""
    x = x * styles.to(x.dtype)[:, :, None, None]
    x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2) if up else F.conv2d(x, weight, padding=padding)
    if demodulate:
        # sum_ik (s_i W_jik)^2 = sum_i s_i^2 sum_k W_jik^2: a [N, in] x [in, out] product, never [N, out, in, k, k].
        d = (styles.square() @ weight.to(styles.dtype).square().sum(dim=(2, 3)).t() + 1e-8).rsqrt()
        x = x * d.to(x.dtype)[:, :, None, None]
    return x


class SynthesisLayer(nn.Module):
    """A modulated 3x3 convolution (optionally upsampling), noise, bias and leaky ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        *,
        up: bool = False,
        use_noise: bool = True,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.up, self.use_noise, self.conv_clamp, self.resolution = up, use_noise, conv_clamp, resolution
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.register_buffer("resample_filter", fir_filter())
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: Tensor, w: Tensor, noise_mode: str = "random", gain: float = 1.0) -> Tensor:
        styles = self.affine(w)  # no equalized gain on the weight: demodulation normalises it anyway
        x = modulated_conv2d(x, self.weight.to(x.dtype), styles, up=self.up, padding=1)
        if self.up:
            x = _filter(x, self.resample_filter, (1, 1, 1, 1), gain=4.0)
        if self.use_noise and noise_mode != "none":
            if noise_mode == "random":
                noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
            elif noise_mode == "const":
                noise = self.noise_const.to(x.dtype)
            else:
                raise ValueError(f"noise_mode must be 'random', 'const' or 'none', got {noise_mode!r}")
            x = x + noise * self.noise_strength.to(x.dtype)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return _bias_act(x, self.bias, "lrelu", gain, clamp)


class ToRGBLayer(nn.Module):
    """A modulated 1x1 convolution to image channels, without demodulation."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, *, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight.to(x.dtype), styles, demodulate=False)
        return _bias_act(x, self.bias, "linear", 1.0, self.conv_clamp)


# --------------------------------------------------------------------------------------------------
# Generator


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network: (constant or upsampling conv0), conv1, toRGB added to the
    upsampled image of the previous resolutions."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        *,
        architecture: str = "skip",
        conv_clamp: float | None = None,
        use_noise: bool = True,
    ) -> None:
        super().__init__()
        if architecture != "skip":
            raise ValueError(f"only the 'skip' generator architecture is built, not {architecture!r}")
        self.in_channels, self.resolution = in_channels, resolution
        self.register_buffer("resample_filter", fir_filter())
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(
                in_channels, out_channels, w_dim, resolution, up=True, use_noise=use_noise, conv_clamp=conv_clamp
            )
        self.conv1 = SynthesisLayer(
            out_channels, out_channels, w_dim, resolution, use_noise=use_noise, conv_clamp=conv_clamp
        )
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.num_conv = 1 if in_channels == 0 else 2
        self.num_torgb = 1

    def forward(self, x: Tensor | None, img: Tensor | None, ws: Tensor, noise_mode: str = "random"):
        w = iter(ws.unbind(dim=1))
        if self.in_channels == 0:
            x = self.const.to(ws.dtype)[None].expand(ws.shape[0], -1, -1, -1)
        else:
            x = self.conv0(x, next(w), noise_mode=noise_mode)
        x = self.conv1(x, next(w), noise_mode=noise_mode)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        y = self.torgb(x, next(w))
        return x, (img + y if img is not None else y)


class SynthesisNetwork(nn.Module):
    """Blocks from 4x4 to ``img_resolution``; channels ``min(channel_base // res, channel_max)``."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        conv_clamp: float | None = None,
        architecture: str = "skip",
        use_noise: bool = True,
    ) -> None:
        super().__init__()
        log2 = math.log2(img_resolution)
        if img_resolution < 4 or log2 != int(log2):
            raise ValueError(f"StyleGAN2 resolution must be a power of 2 >= 4, got {img_resolution}")
        del num_fp16_res  # upstream's fp16 switch: this implementation always runs in the input's dtype
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.block_resolutions = [2**i for i in range(2, int(log2) + 1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(
                channels[res // 2] if res > 4 else 0, channels[res], w_dim, res, img_channels,
                architecture=architecture, conv_clamp=conv_clamp, use_noise=use_noise,
            )  # fmt: skip
            self.num_ws += block.num_conv
            if res == img_resolution:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)

    def forward(self, ws: Tensor, noise_mode: str = "random", **unused: Any) -> Tensor:
        """``ws`` ``[N, num_ws, w_dim]`` to images ``[N, C, H, W]``. ``force_fp32`` and other upstream options
        are accepted and ignored (this network runs in fp32)."""
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        x = img = None
        i = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            x, img = block(x, img, ws[:, i : i + block.num_conv + block.num_torgb], noise_mode=noise_mode)
            i += block.num_conv
        return img


class MappingNetwork(nn.Module):
    """``z`` (and label ``c``) to ``w``, broadcast to ``[N, num_ws, w_dim]``, with truncation around ``w_avg``."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int | None,
        num_layers: int = 8,
        embed_features: int | None = None,
        layer_features: int | None = None,
        lr_multiplier: float = 0.01,
        w_avg_beta: float | None = 0.995,
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws, self.num_layers = z_dim, c_dim, w_dim, num_ws, num_layers
        self.w_avg_beta = w_avg_beta
        embed_features = (w_dim if embed_features is None else embed_features) if c_dim else 0
        layer_features = w_dim if layer_features is None else layer_features
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for i in range(num_layers):
            layer = FullyConnectedLayer(features[i], features[i + 1], activation="lrelu", lr_multiplier=lr_multiplier)
            setattr(self, f"fc{i}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self,
        z: Tensor | None,
        c: Tensor | None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
        **unused: Any,
    ) -> Tensor:
        x = pixel_norm(z.float()) if self.z_dim else None
        if self.c_dim:
            if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
                got = None if c is None else list(c.shape)
                raise ValueError(f"c must be one-hot labels [N, {self.c_dim}], got {got}")
            y = pixel_norm(self.embed(c.float()))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if update_emas and self.w_avg_beta is not None:
            self.w_avg.copy_(x.detach().mean(dim=0).to(self.w_avg.dtype).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is None:
            return x
        x = x[:, None].repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            x = torch.cat([self.w_avg.to(x.dtype).lerp(x[:, :cutoff], truncation_psi), x[:, cutoff:]], dim=1)
        return x


class Generator(nn.Module):
    """``G(z, c) = synthesis(mapping(z, c))`` with NVIDIA's arguments and call signatures."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        mapping_kwargs: dict[str, Any] | None = None,
        synthesis_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, **(synthesis_kwargs or {}))
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws, **(mapping_kwargs or {}))

    def forward(
        self,
        z: Tensor,
        c: Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
        noise_mode: str = "random",
        mix_z: Tensor | None = None,
        mix_prob: float = 0.0,
        return_ws: bool = False,
        **unused: Any,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Images ``[N, C, H, W]``. For training: with probability ``mix_prob`` the styles from a random layer on
        come from ``mix_z`` (style mixing regularisation); ``return_ws`` also returns the styles used."""
        ws = self.mapping(z, c, truncation_psi, truncation_cutoff, update_emas=update_emas)
        if mix_z is not None and mix_prob > 0 and torch.rand([]).item() < mix_prob:
            cutoff = int(torch.randint(1, self.num_ws, []))
            mixed = self.mapping(mix_z, c, truncation_psi, truncation_cutoff)
            ws = torch.cat([ws[:, :cutoff], mixed[:, cutoff:]], dim=1)
        img = self.synthesis(ws, noise_mode=noise_mode)
        return (img, ws) if return_ws else img


# --------------------------------------------------------------------------------------------------
# Discriminator


class DiscriminatorBlock(nn.Module):
    """Two 3x3 convolutions, the second downsampling; ``resnet`` adds a 1x1 downsampling skip, both by sqrt(1/2)."""

    def __init__(
        self,
        in_channels: int,
        tmp_channels: int,
        out_channels: int,
        img_channels: int,
        *,
        architecture: str = "resnet",
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        if architecture not in ("resnet", "orig"):
            raise ValueError(f"discriminator architecture must be 'resnet' or 'orig', got {architecture!r}")
        self.in_channels, self.architecture = in_channels, architecture
        self.register_buffer("resample_filter", fir_filter())
        if in_channels == 0:
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, activation="lrelu", conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, activation="lrelu", down=2, conv_clamp=conv_clamp)
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=2)

    def forward(self, x: Tensor | None, img: Tensor) -> Tensor:
        if self.in_channels == 0:
            x = self.fromrgb(img)
        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            return y + self.conv1(self.conv0(x), gain=math.sqrt(0.5))
        return self.conv1(self.conv0(x))


class DiscriminatorEpilogue(nn.Module):
    """4x4: minibatch std, 3x3 conv, fully connected, output (projected on ``cmap`` when conditional)."""

    def __init__(
        self,
        in_channels: int,
        cmap_dim: int,
        resolution: int,
        *,
        mbstd_group_size: int | None = 4,
        mbstd_num_channels: int = 1,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.cmap_dim = cmap_dim
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, 3, activation="lrelu",
                                conv_clamp=conv_clamp)  # fmt: skip
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation="lrelu")
        self.out = FullyConnectedLayer(in_channels, cmap_dim or 1)

    def forward(self, x: Tensor, cmap: Tensor | None) -> Tensor:
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.out(self.fc(self.conv(x).flatten(1)))
        if self.cmap_dim:
            x = (x * cmap).sum(dim=1, keepdim=True) / math.sqrt(self.cmap_dim)
        return x


class Discriminator(nn.Module):
    """``D(img, c) -> logits [N, 1]`` with NVIDIA's arguments and call signature."""

    def __init__(
        self,
        c_dim: int,
        img_resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        conv_clamp: float | None = None,
        cmap_dim: int | None = None,
        block_kwargs: dict[str, Any] | None = None,
        mapping_kwargs: dict[str, Any] | None = None,
        epilogue_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        del num_fp16_res
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.block_resolutions = [2**i for i in range(int(math.log2(img_resolution)), 2, -1)]
        channels = {res: min(channel_base // res, channel_max) for res in [*self.block_resolutions, 4]}
        cmap_dim = (channels[4] if cmap_dim is None else cmap_dim) if c_dim else 0
        for res in self.block_resolutions:
            in_channels = channels[res] if res < img_resolution else 0
            block = DiscriminatorBlock(
                in_channels, channels[res], channels[res // 2], img_channels, architecture=architecture,
                conv_clamp=conv_clamp, **(block_kwargs or {}),
            )  # fmt: skip
            setattr(self, f"b{res}", block)
        if c_dim:
            self.mapping = MappingNetwork(0, c_dim, cmap_dim, None, w_avg_beta=None, **(mapping_kwargs or {}))
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim, 4, conv_clamp=conv_clamp, **(epilogue_kwargs or {}))

    def forward(self, img: Tensor, c: Tensor | None = None, **unused: Any) -> Tensor:
        expected = (self.img_channels, self.img_resolution, self.img_resolution)
        if img.ndim != 4 or tuple(img.shape[1:]) != expected:
            raise ValueError(f"D takes images [N, {', '.join(map(str, expected))}], got {list(img.shape)}")
        x = None
        for res in self.block_resolutions:
            x = getattr(self, f"b{res}")(x, img)
        cmap = self.mapping(None, c) if self.c_dim else None
        return self.b4(x, cmap)


# --------------------------------------------------------------------------------------------------
# Differentiable augmentation


def diff_augment(x: Tensor, policy: str) -> Tensor:
    """DiffAugment (Zhao et al. 2020, arXiv:2006.10738): the same random, differentiable transforms on real and
    fake images before D, so D cannot overfit a small data set. ``policy``: comma-separated ``color`` (brightness
    +-0.5, saturation x[0, 2], contrast x[0.5, 1.5]), ``translation`` (up to 1/8 of the side, zero fill),
    ``cutout`` (a zeroed square of half the side)."""
    n, _, h, w = x.shape
    for op in filter(None, (p.strip() for p in policy.split(","))):
        if op == "color":
            x = x + (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)
            mean = x.mean(dim=1, keepdim=True)
            x = (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean
        elif op == "translation":
            shift = torch.randint(-(h // 8), h // 8 + 1, (n, 2), device=x.device)
            gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
            sy = (gy[None] + shift[:, 0, None, None]).clamp(-1, h)
            sx = (gx[None] + shift[:, 1, None, None]).clamp(-1, w)
            padded = F.pad(x, (1, 1, 1, 1))
            idx = ((sy + 1) * (w + 2) + (sx + 1)).flatten(1)[:, None].expand(-1, x.shape[1], -1)
            x = padded.flatten(2).gather(2, idx).view_as(x)
        elif op == "cutout":
            size = (h // 2, w // 2)
            oy = torch.randint(0, h + 1 - size[0] % 2, (n, 1, 1), device=x.device) - size[0] // 2
            ox = torch.randint(0, w + 1 - size[1] % 2, (n, 1, 1), device=x.device) - size[1] // 2
            gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
            inside = (gy[None] >= oy) & (gy[None] < oy + size[0]) & (gx[None] >= ox) & (gx[None] < ox + size[1])
            x = x * (~inside)[:, None].to(x.dtype)
        else:
            raise ValueError(f"unknown DiffAugment op {op!r}: color, translation, cutout")
    return x


# --------------------------------------------------------------------------------------------------
# The LightningModule


@register_gan(
    "stylegan2",
    tiny=dict(image_size=8, latent_dim=8, w_dim=8, mapping_layers=2, channel_base=64, channel_max=8,
              mbstd_group_size=2, ema_kimg=0.01),
)  # fmt: skip
class StyleGAN2(LatentGAN):
    """StyleGAN2 (Karras et al. 2020) trained as StyleGAN2-ADA trains it.

    Args:
        image_size: output side, a power of 2.
        image_channels: 1 or 3.
        latent_dim: ``z_dim``.
        w_dim: width of the intermediate latent ``w``.
        num_classes: ``c_dim``; 0 for unconditional.
        mapping_layers: depth of the mapping network (8 in the paper, 2 in ADA's ``cifar`` and ``auto`` configs).
        channel_base, channel_max: a block at resolution ``r`` has ``min(channel_base // r, channel_max)`` channels.
        conv_clamp: clamp of every convolution's output (256 in ADA); ``None`` for none.
        d_architecture: ``"resnet"`` (paper) or ``"orig"`` (ADA's ``cifar`` config).
        mbstd_group_size: minibatch standard deviation group (4; the batch per process must be a multiple);
            ``None`` for the whole batch.
        lr, betas: Adam, before the lazy-regularisation adjustment ``lr * k / (k + 1)``, ``beta ** (k / (k + 1))``.
        r1_gamma: weight of the R1 penalty ``gamma / 2 * E ||grad D(x)||^2`` on reals (Mescheder et al. 2018).
        pl_weight: weight of the path-length penalty (0 to turn it off).
        style_mixing_prob: probability that a training batch's styles switch to those of a second ``z`` from a
            random layer on.
        g_reg_interval, d_reg_interval: lazy regularisation intervals, in batches.
        ema_kimg: half-life of the generator EMA in thousands of images.
        ema_rampup: NVIDIA's EMA ramp-up (0.05 in StyleGAN2-ADA's ``auto`` and ``cifar`` configurations): the
            half-life is at most this fraction of the images seen so far; ``None`` for none.
        augment: a DiffAugment policy (``"color,translation,cutout"``) for small data; ``None`` for none.
        class_names: names of the ``num_classes`` classes, for the card and ``ganzoo info``.
        w_avg_beta: decay of the tracked average ``w`` per batch (0.995 in ADA, 0.998 in the StyleGAN3 code; 1 keeps
            it fixed, as in NVIDIA's conversions of TensorFlow networks).
        mapping_lr_multiplier: learning-rate multiplier of the mapping network's layers (0.01 in the paper).
        d_mapping_layers, d_mapping_lr_multiplier: depth and learning-rate multiplier of a conditional
            discriminator's label mapping (8 and 0.01 in StyleGAN2-ADA; 0 and 0.1 in its conversions of
            TensorFlow networks, which embed the label only).
        use_noise: per-pixel noise inputs in the synthesis layers.
        mbstd_num_channels: features of the minibatch standard deviation layer (0 turns it off).
    """

    constant_buffers = ("resample_filter", "noise_const")  # never change in training: not re-broadcast under DDP

    def __init__(
        self,
        image_size: int = 32,
        image_channels: int = 3,
        latent_dim: int = 512,
        w_dim: int = 512,
        num_classes: int = 0,
        mapping_layers: int = 8,
        channel_base: int = 16384,
        channel_max: int = 512,
        conv_clamp: float | None = 256,
        d_architecture: str = "resnet",
        mbstd_group_size: int | None = 4,
        lr: float = 0.0025,
        betas: tuple[float, float] = (0.0, 0.99),
        r1_gamma: float = 10.0,
        pl_weight: float = 2.0,
        style_mixing_prob: float = 0.9,
        g_reg_interval: int = 4,
        d_reg_interval: int = 16,
        ema_kimg: float | None = 10.0,
        ema_rampup: float | None = None,
        augment: str | None = None,
        class_names: list[str] | None = None,
        w_avg_beta: float = 0.995,
        mapping_lr_multiplier: float = 0.01,
        d_mapping_layers: int = 8,
        d_mapping_lr_multiplier: float = 0.01,
        use_noise: bool = True,
        mbstd_num_channels: int = 1,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
        self.generator = Generator(
            latent_dim, num_classes, w_dim, image_size, image_channels,
            mapping_kwargs=dict(num_layers=mapping_layers, lr_multiplier=mapping_lr_multiplier, w_avg_beta=w_avg_beta),
            synthesis_kwargs=dict(channel_base=channel_base, channel_max=channel_max, conv_clamp=conv_clamp,
                                  use_noise=use_noise),
        )  # fmt: skip
        self.discriminator = Discriminator(
            num_classes, image_size, image_channels, architecture=d_architecture, channel_base=channel_base,
            channel_max=channel_max, conv_clamp=conv_clamp,
            mapping_kwargs=dict(num_layers=d_mapping_layers, lr_multiplier=d_mapping_lr_multiplier),
            epilogue_kwargs=dict(mbstd_group_size=mbstd_group_size, mbstd_num_channels=mbstd_num_channels),
        )  # fmt: skip
        self.init_ema(ema_kimg, ema_rampup)
        self.register_buffer("pl_mean", torch.zeros([]))

    # Inputs -----------------------------------------------------------------------------------------

    def latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``z`` ``[n, latent_dim]``, followed for a conditional model by one-hot labels drawn uniformly."""
        z = torch.randn(n, self.hparams.latent_dim, generator=generator)
        if not self.num_classes:
            return z
        return self.with_labels(z, torch.randint(self.num_classes, (n,), generator=generator))

    def _split(self, z: Tensor) -> tuple[Tensor, Tensor]:
        d = self.hparams.latent_dim
        return z[:, :d], z[:, d:]

    def generate(self, net: nn.Module, z: Tensor, **kwargs: Any) -> Tensor:
        z, c = self._split(z)
        return net(z, c, **{"noise_mode": "const", **kwargs})

    # Sampling ---------------------------------------------------------------------------------------

    @torch.no_grad()
    def sample(
        self,
        n: int,
        seed: int | None = None,
        *,
        labels: Tensor | list[int] | list[str] | int | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",
        batch_size: int = 64,
        progress: bool = False,
    ) -> Tensor:
        """``n`` images ``[n, C, H, W]`` in [-1, 1] from the EMA generator.

        Args:
            seed: the same seed gives the same images (with ``noise_mode="const"`` or ``"none"``); ``z`` is drawn as
                NVIDIA's ``generate.py --seeds`` draws it, so ``sample(1, seed=s)`` is their image for seed ``s``.
            labels: class ids or names for a conditional model (default: ``0, 1, 2, ...`` cycling through the
                classes); see :meth:`GAN.one_hot`.
            truncation_psi, truncation_cutoff: ``w = w_avg + psi (w - w_avg)`` on the first ``cutoff`` styles
                (all by default); psi < 1 trades variety for typicality.
            noise_mode: ``"const"`` (the stored noise maps), ``"random"`` or ``"none"``.
        """
        options = dict(truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, noise_mode=noise_mode)
        return super().sample(n, seed, labels=labels, batch_size=batch_size, progress=progress, **options)

    def sample_latents(self, n: int, seed: int | None = None) -> Tensor:
        """``z`` as NVIDIA's generate.py draws it (``RandomState(seed).randn(n, z_dim)``), then for a conditional
        model one-hot labels ``0, 1, 2, ...`` cycling through the classes."""
        if seed is None:
            z = torch.randn(n, self.hparams.latent_dim)
        else:
            z = torch.from_numpy(np.random.RandomState(seed).randn(n, self.hparams.latent_dim)).float()
        return self.with_labels(z, torch.arange(n) % self.num_classes) if self.num_classes else z

    @torch.no_grad()
    def style_mix(
        self, row_seeds: list[int], col_seeds: list[int], *, styles: slice = slice(0, 6), truncation_psi: float = 1.0
    ) -> Tensor:
        """The style-mixing grid of the paper's figure 3: images ``[len(row) * len(col), C, H, W]``, row ``i``
        column ``j`` taking ``w`` of ``row_seeds[i]`` except the ``styles`` layers, taken from ``col_seeds[j]``
        (0:4 coarse, 4:8 middle, 8: fine at 1024 px)."""
        net = self.sampling_generator.eval()
        seeds = list(row_seeds) + list(col_seeds)
        z = torch.cat([self.sample_latents(1, s)[:, : self.hparams.latent_dim] for s in seeds]).to(self.device)
        c = self.one_hot(0, len(seeds)) if self.num_classes else None
        ws = net.mapping(z, c, truncation_psi=truncation_psi)
        rows, cols = ws[: len(row_seeds)], ws[len(row_seeds) :]
        mixed = rows[:, None].repeat(1, len(cols), 1, 1)
        mixed[:, :, styles] = cols[None, :, styles]
        images = net.synthesis(mixed.flatten(0, 1), noise_mode="const")
        return images.float().clamp_(-1, 1)

    @torch.no_grad()
    def mixing_figure(
        self, row_seeds: list[int], col_seeds: list[int], *, styles: slice = slice(0, 6), truncation_psi: float = 1.0
    ) -> tuple[Tensor, int]:
        """:meth:`style_mix` laid out as the paper's figure, and the images per row: the column sources along the
        top, the row sources down the left, a blank corner."""
        mixed = self.style_mix(row_seeds, col_seeds, styles=styles, truncation_psi=truncation_psi)
        seeds = list(row_seeds) + list(col_seeds)
        sources = self.style_mix(seeds, [0], styles=slice(0, 0), truncation_psi=truncation_psi)
        n, top = len(col_seeds), torch.cat([torch.full_like(sources[:1], -1.0), sources[len(row_seeds) :]])
        body = [torch.cat([sources[i : i + 1], mixed[i * n : (i + 1) * n]]) for i in range(len(row_seeds))]
        return torch.cat([top, *body]), n + 1

    def walk_codes(self, z: Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                   **kwargs: Any) -> Tensor:  # fmt: skip
        """A walk's codes are the seeds' styles ``w`` ``[n, num_ws, w_dim]`` (truncated as asked): the mapping
        network has made W's straight lines meaningful, where z's would not be (the paper's perceptual path
        length is measured along them)."""
        net = self.sampling_generator.eval()
        return net.mapping(*self._split(z.to(self.device)), truncation_psi, truncation_cutoff).cpu()

    def walk_step(self, a: Tensor, b: Tensor, t: Tensor) -> Tensor:
        return torch.lerp(a[None], b[None], t.to(a.dtype).view(-1, 1, 1))

    def render_walk(self, codes: Tensor, noise_mode: str = "const", **kwargs: Any) -> Tensor:
        net = self.sampling_generator.eval()
        return net.synthesis(codes.to(self.device), noise_mode=noise_mode).float().clamp_(-1, 1).cpu()

    # Training ---------------------------------------------------------------------------------------

    def _run_generator(self, G: nn.Module, n: int, c: Tensor, update_emas: bool = False, return_ws: bool = False):
        z = self._split(self.training_latents(n))[0]
        mix_prob = self.hparams.style_mixing_prob
        mix_z = self._split(self.training_latents(n))[0] if mix_prob > 0 else None
        return G(z, c, update_emas=update_emas, noise_mode="random", mix_z=mix_z, mix_prob=mix_prob,
                 return_ws=return_ws)  # fmt: skip

    def _augment(self, x: Tensor) -> Tensor:
        return diff_augment(x, self.hparams.augment) if self.hparams.augment else x

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        real, labels = batch
        hp = self.hparams
        n = len(real)
        c = self.batch_labels(labels) if hp.num_classes else real.new_zeros(n, 0)
        opt_g, opt_d = self.optimizers()
        G, D = self.net("generator"), self.net("discriminator")
        step = self.batches_seen  # batches done before this one: the lazy intervals count these
        logs = {}

        with self.toggled_optimizer(opt_g):  # Gmain, then Greg every g_reg_interval batches
            fake = self._run_generator(G, n, c)
            logs["loss/g"] = losses.g_nonsaturating(D(self._augment(fake), c))
            self.update(opt_g, logs["loss/g"])
            if hp.pl_weight and step % hp.g_reg_interval == 0:
                m = max(n // 2, 1)
                fake, ws = self._run_generator(G, m, c[:m], return_ws=True)
                reduce = self._mean_over_processes if self.trainer.world_size > 1 else None
                penalty, lengths = losses.path_length_penalty(fake, ws, self.pl_mean, decay=0.01, reduce=reduce)
                # + fake * 0: the penalty alone never reaches the toRGB biases, and DDP wants every parameter used.
                self.update(opt_g, penalty * hp.pl_weight * hp.g_reg_interval + fake[:, 0, 0, 0].sum() * 0)
                logs["penalty/pl"] = penalty.detach()
                logs["score/pl_length"] = lengths.mean().detach()

        with self.toggled_optimizer(opt_d):  # Dmain, then Dreg every d_reg_interval batches
            with torch.no_grad():
                fake = self._run_generator(G, n, c, update_emas=True)
            real_logits = D(self._augment(real), c)
            logs["loss/d"] = losses.d_logistic(real_logits, D(self._augment(fake), c))
            self.update(opt_d, logs["loss/d"])
            if hp.r1_gamma and step % hp.d_reg_interval == 0:
                real = real.detach().requires_grad_(True)
                logits = D(self._augment(real), c)
                penalty = losses.r1_penalty(logits, real)
                # + logits * 0: R1, a gradient with respect to the input, never reaches D's output bias; DDP wants
                # every parameter used.
                self.update(opt_d, penalty * (hp.r1_gamma / 2) * hp.d_reg_interval + logits.sum() * 0)
                logs["penalty/r1"] = penalty.detach()
        logs["score/real"] = real_logits.detach().mean()
        self.log_dict(logs, prog_bar=False)

    def _mean_over_processes(self, x: Tensor) -> Tensor:
        return self.trainer.strategy.reduce(x, reduce_op="mean")

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        hp = self.hparams
        optimizers = []
        for net, k in ((self.generator, hp.g_reg_interval), (self.discriminator, hp.d_reg_interval)):
            ratio = k / (k + 1)  # lazy regularisation: the main loss is stepped k times per k + 1 steps
            betas = (hp.betas[0] ** ratio, hp.betas[1] ** ratio)
            optimizers.append(torch.optim.Adam(net.parameters(), lr=hp.lr * ratio, betas=betas, eps=1e-8))
        return optimizers

    # NVIDIA's weights ------------------------------------------------------------------------------

    upstream_format = "nvidia-pickle"

    @classmethod
    def upstream_weights(cls, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Tensor]]:
        """Hparams and state dict from NVIDIA's network pickle, read as data by
        :func:`ganzoo.convert.read_nvidia_pickle`: ``G_ema`` into ``generator_ema``, ``G`` into ``generator``
        (``G_ema`` again when absent), ``D`` when present (a generator-only release has none); the architecture
        from the networks' own init arguments (see :func:`_hparams_from_nvidia`). fp16 flags are ignored (fp32),
        and ``ema_kimg`` is the paper's 10 (NVIDIA's pickles do not record it)."""
        from ganzoo.convert import PersistentObject

        g_ema = data.get("G_ema")
        if not isinstance(g_ema, PersistentObject):
            raise ValueError(f"no G_ema network in this pickle (it holds {sorted(data)})")
        g = data["G"] if isinstance(data.get("G"), PersistentObject) else g_ema
        d = data["D"] if isinstance(data.get("D"), PersistentObject) else None
        g_state = g_ema.state_dict()
        if "stylegan3" in g_ema.class_name or any(k.startswith("synthesis.input.") for k in g_state):
            raise ValueError(
                f"{g_ema.class_name} is an alias-free StyleGAN3 network, which ganzoo does not build; StyleGAN2 "
                f"networks from the stylegan2-ada-pytorch and stylegan3 repositories load"
            )
        if "synthesis.b4.const" not in g_state:
            raise ValueError(f"G_ema ({g_ema.class_name}) is not a StyleGAN2 generator: it has no synthesis.b4.const")
        hparams, unsupported = _hparams_from_nvidia(g_ema.init_kwargs, d.init_kwargs if d is not None else None)
        if unsupported:
            raise ValueError(f"this pickle's networks use options ganzoo's StyleGAN2 does not build: {unsupported}")
        state = {f"generator.{k}": v for k, v in g.state_dict().items()}
        state |= {f"generator_ema.{k}": v for k, v in g_state.items()}
        if d is not None:
            state |= {f"discriminator.{k}": v for k, v in d.state_dict().items()}
        state["pl_mean"] = torch.zeros([])  # the path-length running mean starts afresh, as in a new run
        return hparams | {"ema_kimg": 10.0}, {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


# Upstream options that change how a network runs, not what it computes (precision, memory layout, training
# speed-ups and layer freezing for fine-tuning): ignored when converting.
_RUNTIME_OPTIONS = {
    "num_fp16_res", "use_fp16", "fp16_channels_last", "channels_last", "fused_modconv_default", "freeze_layers",
}  # fmt: skip


# The arguments of NVIDIA's Generator other than the synthesis options.
_GENERATOR_ARGS = {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs"}


def _is_lrelu(value: Any) -> bool:
    return value == "lrelu"


def _is_fir_1331(value: Any) -> bool:
    return isinstance(value, list | tuple) and list(value) == [1, 3, 3, 1]


class _Options:
    """One upstream kwargs dict read against what ganzoo builds: :meth:`take` the options that become hparams,
    :meth:`accept` those ganzoo builds only at some values; whatever else is left, apart from runtime switches,
    lands in ``unsupported`` under its dotted name (``"G.synthesis_kwargs.architecture"``)."""

    def __init__(self, where: str, options: dict[str, Any] | None, unsupported: dict[str, Any]) -> None:
        self.where, self.options, self.unsupported = where, dict(options or {}), unsupported

    def take(self, key: str, default: Any) -> Any:
        return self.options.pop(key, default)

    def accept(self, key: str, ok: Callable[[Any], bool]) -> None:
        if key in self.options:
            value = self.options.pop(key)
            if not ok(value):
                self.unsupported[self.where + key] = value

    def refuse(self, key: str, value: Any) -> None:
        self.unsupported[self.where + key] = value

    def done(self) -> None:
        for key, value in self.options.items():
            if key not in _RUNTIME_OPTIONS:
                self.unsupported[self.where + key] = value


def _hparams_from_nvidia(
    g_kwargs: dict[str, Any], d_kwargs: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """StyleGAN2 hparams from the init arguments of NVIDIA's ``Generator`` and ``Discriminator``, and the options
    ganzoo does not build (empty when it builds them all).

    Two layouts exist: stylegan2-ada-pytorch's ``training/networks.py`` nests the synthesis options in
    ``synthesis_kwargs``; the stylegan3 repository's ``training/networks_stylegan2.py`` takes them at the top
    level, and its defaults differ (``conv_clamp`` 256, ``w_avg_beta`` 0.998). An option missing from the
    arguments has its repository's default. NVIDIA's TensorFlow converter (``legacy.py``) writes every option,
    including ones equal to ganzoo's only in effect (``embed_features=None``: as wide as ``w``).
    """
    unsupported: dict[str, Any] = {}
    g = _Options("G.", g_kwargs, unsupported)
    if "synthesis_kwargs" in g.options:  # stylegan2-ada-pytorch
        synthesis = _Options("G.synthesis_kwargs.", g.take("synthesis_kwargs", None), unsupported)
        conv_clamp_default, w_avg_beta_default = None, 0.995
    else:  # stylegan3's networks_stylegan2: everything but z, c, w, the image size and the mapping is synthesis's
        top = {k: g.options.pop(k) for k in list(g.options) if k not in _GENERATOR_ARGS}
        synthesis = _Options("G.", top, unsupported)
        conv_clamp_default, w_avg_beta_default = 256, 0.998
    missing = [k for k in ("z_dim", "w_dim", "img_resolution", "img_channels") if k not in g.options]
    if missing:
        raise ValueError(f"G_ema's init arguments lack {missing}: not a network pickle ganzoo can read")
    c_dim, w_dim = g.take("c_dim", 0), g.take("w_dim", None)
    hp: dict[str, Any] = dict(
        image_size=g.take("img_resolution", None), image_channels=g.take("img_channels", None),
        latent_dim=g.take("z_dim", None), w_dim=w_dim, num_classes=c_dim,
    )  # fmt: skip
    mapping = _Options("G.mapping_kwargs.", g.take("mapping_kwargs", None), unsupported)
    g.done()

    hp["mapping_layers"] = mapping.take("num_layers", 8)
    hp["mapping_lr_multiplier"] = mapping.take("lr_multiplier", 0.01)
    hp["w_avg_beta"] = mapping.take("w_avg_beta", w_avg_beta_default)
    if hp["w_avg_beta"] is None:  # no w_avg buffer: nothing to truncate towards
        mapping.refuse("w_avg_beta", None)
    mapping.accept("embed_features", lambda v: v in (None, w_dim) or not c_dim)
    mapping.accept("layer_features", lambda v: v in (None, w_dim))
    mapping.accept("activation", _is_lrelu)
    mapping.done()

    hp["channel_base"] = synthesis.take("channel_base", 32768)
    hp["channel_max"] = synthesis.take("channel_max", 512)
    hp["conv_clamp"] = synthesis.take("conv_clamp", conv_clamp_default)
    hp["use_noise"] = synthesis.take("use_noise", True)
    synthesis.accept("architecture", lambda v: v == "skip")
    synthesis.accept("resample_filter", _is_fir_1331)
    synthesis.accept("activation", _is_lrelu)
    synthesis.accept("kernel_size", lambda v: v == 3)
    synthesis.done()
    if d_kwargs is None:
        return hp, unsupported

    d = _Options("D.", d_kwargs, unsupported)
    shared = {  # ganzoo's G and D share these: (NVIDIA's default, G's value)
        "c_dim": (None, c_dim),
        "img_resolution": (None, hp["image_size"]),
        "img_channels": (None, hp["image_channels"]),
        "channel_base": (32768, hp["channel_base"]),
        "channel_max": (512, hp["channel_max"]),
        "conv_clamp": (conv_clamp_default, hp["conv_clamp"]),
    }
    for key, (default, expected) in shared.items():
        value = d.take(key, default)
        if value != expected:
            d.refuse(key, value)
    hp["d_architecture"] = d.take("architecture", "resnet")
    if hp["d_architecture"] not in ("resnet", "orig"):
        d.refuse("architecture", hp["d_architecture"])
    cmap_dim = min(hp["channel_base"] // 4, hp["channel_max"])
    d.accept("cmap_dim", lambda v: v in (None, cmap_dim) or not c_dim)
    block = _Options("D.block_kwargs.", d.take("block_kwargs", None), unsupported)
    block.accept("activation", _is_lrelu)
    block.accept("resample_filter", _is_fir_1331)
    block.done()
    d_mapping = d.take("mapping_kwargs", None)
    if c_dim:  # an unconditional D builds no mapping: its options do not matter
        d_mapping = _Options("D.mapping_kwargs.", d_mapping, unsupported)
        hp["d_mapping_layers"] = d_mapping.take("num_layers", 8)
        hp["d_mapping_lr_multiplier"] = d_mapping.take("lr_multiplier", 0.01)
        d_mapping.accept("embed_features", lambda v: v in (None, cmap_dim))
        d_mapping.accept("layer_features", lambda v: v in (None, cmap_dim))
        d_mapping.accept("activation", _is_lrelu)
        d_mapping.done()
    epilogue = _Options("D.epilogue_kwargs.", d.take("epilogue_kwargs", None), unsupported)
    hp["mbstd_group_size"] = epilogue.take("mbstd_group_size", 4)
    hp["mbstd_num_channels"] = epilogue.take("mbstd_num_channels", 1)
    epilogue.accept("activation", _is_lrelu)
    epilogue.done()
    d.done()
    return hp, unsupported


# --------------------------------------------------------------------------------------------------
# NVIDIA's official weights: never committed or re-hosted (NVIDIA Source Code License, non-commercial);
# downloaded from NVIDIA, verified and converted at load time.

_NVIDIA = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"
_NVIDIA_LICENSE = "nvidia-source-code-license-nc"
_NVIDIA_SOURCE = "NVIDIA's official StyleGAN2-ADA weights (NVIDIA Source Code License, non-commercial use only)"

register_pretrained(
    *(
        Pretrained(
            name=name,
            variant="stylegan2",
            dataset=dataset,
            resolution=resolution,
            license=_NVIDIA_LICENSE,
            url=_NVIDIA + file,
            source=_NVIDIA_SOURCE,
            description=description,
            aliases=aliases,
        )
        for name, dataset, resolution, file, aliases, description in [
            (
                "stylegan2-ffhq-1024",
                "ffhq",
                1024,
                "ffhq.pkl",
                ("stylegan-ffhq", "stylegan2-ffhq"),
                "StyleGAN2 config F on FFHQ 1024x1024 (NVIDIA, converted from the TensorFlow release)",
            ),
            (
                "stylegan2-metfaces-1024",
                "metfaces",
                1024,
                "metfaces.pkl",
                (),
                "StyleGAN2-ADA on MetFaces 1024x1024, transfer from FFHQ (NVIDIA)",
            ),
            ("stylegan2-afhqcat-512", "afhq-cat", 512, "afhqcat.pkl", (), "StyleGAN2-ADA on AFHQ Cat 512x512 (NVIDIA)"),
            ("stylegan2-afhqdog-512", "afhq-dog", 512, "afhqdog.pkl", (), "StyleGAN2-ADA on AFHQ Dog 512x512 (NVIDIA)"),
            (
                "stylegan2-afhqwild-512",
                "afhq-wild",
                512,
                "afhqwild.pkl",
                (),
                "StyleGAN2-ADA on AFHQ Wild 512x512 (NVIDIA)",
            ),
            (
                "stylegan2-brecahad-512",
                "brecahad",
                512,
                "brecahad.pkl",
                (),
                "StyleGAN2-ADA on BreCaHAD 512x512 (NVIDIA)",
            ),
            (
                "stylegan2-cifar10-32",
                "cifar10",
                32,
                "cifar10.pkl",
                (),
                "StyleGAN2-ADA class-conditional on CIFAR-10 32x32 (NVIDIA; published FID 2.42, fid50k_full)",
            ),
        ]
    )
)

register_pretrained(
    Pretrained(
        name="stylegan2-mnist-32",
        variant="stylegan2",
        dataset="mnist",
        resolution=32,
        license="apache-2.0",
        description="StyleGAN2 (64 channels, ADA's cifar-style configuration) on the MNIST training set, 32x32 "
        "grayscale, 140k images on a 2-core CPU: a small, honestly measured model, far from converged",
        folder="stylegan2-mnist-32",
        sha256="ee2df583b5c544eb11f8c474a7dd112e4929511040a0d4abc5ec1009fa4c6f93",
        recipe="stylegan2-mnist-32",
    )
)
