"""Training throughput of every shipped recipe: ganzoo's Lightning loop next to a hand-written PyTorch loop.

For each recipe (``recipes/<name>.yaml``) the model is built from the recipe's ``init_args`` once; two loops then
train copies of it (the same initial weights) on the same batches:

- **plain**: a loop written by hand for that recipe in plain PyTorch: no Lightning, no ganzoo training code. It
  uses the module's networks as ordinary ``nn.Module``s, builds its own optimizers with the recipe's settings
  (checked against ``configure_optimizers``), and does per batch what the variant's ``training_step`` and
  ganzoo's batch end do: the same phases, losses, penalties and schedules, and the generator EMA;
- **ganzoo**: ``lightning.Trainer.fit`` on the module itself (manual optimisation, its own ``training_step``, its
  counters, EMA and logging calls; no logger, progress bar or checkpointing).

The data is synthetic (``ganzoo.data.Synthetic`` discs, or for a translator pairs of discs and their negatives), at
the recipe's batch size, image size (a translator's crop), channels and classes, converted to float and put on the
device before the clock starts, so data loading is not what is measured. Each measurement trains ``--warmup`` untimed
batches and then ``--batches`` timed ones (from the end of the last warm-up batch to the end of the last batch,
synchronising CUDA before reading the clock), and the loops alternate ``--repeats`` times (plain first, then ganzoo
first, ...), so that drift in the machine's load hits both. The default ``--batches`` is a multiple of the recipe's
schedule (WGAN-GP's ``n_critic``, StyleGAN2's lazy regularisation intervals), so the timed batches hold their share
of generator steps and penalties. Each run checks afterwards that its losses are finite and that G, D and the EMA
changed.

Output: one line per measurement while it runs, then a Markdown table: the median images per second (real images
through the discriminator) of each loop and their ratio ``ganzoo/plain``; 1.00 means no overhead, the project holds
it at 0.95 or more. ``sample/translate img/s`` is ``gan.sample`` in batches of 256, or for a translator
``gan.translate`` of 256x256 images in batches of 16 (each direction in turn for a two-way model), or for
super-resolution ``gan.upscale`` of a 1000x800 image, whole and in 256-pixel tiles, in megapixels of output per
second. Under CUDA,
ganzoo's speed options (bf16-mixed, channels_last, torch.compile) get rows of their own, against the same fp32 plain
loop, with the peak memory of ganzoo's runs; an option a recipe cannot run (torch.compile cannot take the double
backward of R1 or the gradient penalty) says why in its row. The figures are only as quiet as the machine: run it
alone, with ``--threads`` (default: the cores this process may use) fixed, and compare ratios rather than images per
second across machines.

    python benchmarks/throughput.py [--recipes dcgan-mnist,wgan-gp-cifar10] [--batches N] [--warmup 5]
        [--repeats 3] [--device cpu|cuda] [--threads T] [--sample 1024] [--output benchmarks/throughput.md]
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import os
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
import yaml
from torch import Tensor

import ganzoo
from ganzoo import registry
from ganzoo.callbacks import TrainingOptions
from ganzoo.data import Synthetic, to_unit_range
from ganzoo.gan import GAN, _cpu_name
from ganzoo.models.pix2pix import linear_decay
from ganzoo.models.stylegan2 import diff_augment

RECIPES = Path(__file__).resolve().parent.parent / "recipes"

Batch = tuple[Tensor, Tensor]
Step = Callable[[int, Tensor, Tensor], dict[str, Tensor]]  # (batch index, real, labels) -> detached losses


@dataclass
class Recipe:
    name: str
    variant: str
    hparams: dict
    batch_size: int
    image_size: int


def load_recipe(name: str) -> Recipe:
    config = yaml.safe_load((RECIPES / f"{name}.yaml").read_text())
    model, data = config["model"], config["data"]["init_args"]
    cls_name = model["class_path"].split(".")[-1]
    variant = next(v for v, info in registry.variants().items() if info.cls.__name__ == cls_name)
    hparams = dict(model.get("init_args") or {})
    return Recipe(name, variant, hparams, int(data["batch_size"]), int(data.get("image_size") or data["crop_size"]))


def schedule_period(gan: GAN) -> int:
    """Batches after which the training schedule repeats: WGAN's critic round, StyleGAN2's lazy intervals."""
    hp = gan.hparams
    if gan.variant == "wgan":
        return int(hp.n_critic)
    if gan.variant == "stylegan2":
        return math.lcm(int(hp.d_reg_interval), int(hp.g_reg_interval))
    return 1


def at_final_stage(gan: GAN) -> GAN:
    """A growing model (ProGAN) at its final stage, fully faded in, with its clock there: where a run spends most of
    its time. Other models as they are."""
    if gan.variant == "progan":
        while gan.stage < len(gan.hparams.channels) - 1:
            gan.grow()
        gan.images_seen = int(gan.stage_table()[-1]["stable_from_kimg"] * 1000)
        gan.set_alpha(1.0)
    return gan


def make_batches(gan: GAN, recipe: Recipe, count: int, device: str) -> list[Batch]:
    """``count`` batches of synthetic images in [-1, 1] of the recipe's shape, with labels (a translator: pairs
    ``(A, B)``), on ``device``."""
    data = Synthetic.matching(gan, num_images=count * recipe.batch_size, batch_size=recipe.batch_size)
    data = data.build_dataset("train")
    if gan.task in registry.IMAGE_TASKS:  # (A, B) pairs; (LR, HR) for super-resolution
        a, b = to_unit_range(data.a).to(device), to_unit_range(data.b).to(device)
        return list(zip(a.split(recipe.batch_size), b.split(recipe.batch_size), strict=True))
    images, labels = to_unit_range(data.images).to(device), data.labels.to(device)
    return list(zip(images.split(recipe.batch_size), labels.split(recipe.batch_size), strict=True))


# --------------------------------------------------------------------------------------------------
# The plain loops: what one would write by hand for each recipe. Each ``plain_<variant>`` builds the optimizers
# and returns them with the function that trains one batch.


def _update(opt: torch.optim.Optimizer, loss: Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _ema(gan: GAN) -> Callable[[int], None]:
    """The generator EMA (of each generator that has one) with a half-life of ``ema_kimg`` thousand images:
    ``beta = 0.5 ** (n / (1000 ema_kimg))``."""
    if not gan.ema_networks:
        return lambda n: None
    nets = [(getattr(gan, f"{name}_ema"), getattr(gan, name)) for name in gan.ema_networks]
    params = [pair for ema, net in nets for pair in zip(ema.parameters(), net.parameters(), strict=True)]
    buffers = [pair for ema, net in nets for pair in zip(ema.buffers(), net.buffers(), strict=True)]
    kimg = float(gan.hparams.ema_kimg)

    @torch.no_grad()
    def update(n: int) -> None:
        beta = 0.5 ** (n / (1000.0 * kimg))
        for p_ema, p in params:
            p_ema.lerp_(p, 1.0 - beta)
        for b_ema, b in buffers:
            b_ema.copy_(b)

    return update


def plain_dcgan(gan: GAN, device: str) -> tuple[list[torch.optim.Optimizer], Step]:
    """DCGAN: one D step (non-saturating logistic loss on real and fake), one G step on the same fakes, EMA."""
    hp, G, D, ema = gan.hparams, gan.generator, gan.discriminator, _ema(gan)
    opt_g = torch.optim.Adam(G.parameters(), lr=hp.lr, betas=tuple(hp.betas))
    opt_d = torch.optim.Adam(D.parameters(), lr=hp.lr, betas=tuple(hp.betas))

    def step(i: int, real: Tensor, labels: Tensor) -> dict[str, Tensor]:
        n = len(real)
        fake = G(torch.randn(n, hp.latent_dim, device=device))
        D.requires_grad_(True)
        d_loss = F.softplus(-D(real)).mean() + F.softplus(D(fake.detach())).mean()
        _update(opt_d, d_loss)
        D.requires_grad_(False)
        g_loss = F.softplus(-D(fake)).mean()
        _update(opt_g, g_loss)
        ema(n)
        return {"loss/d": d_loss.detach(), "loss/g": g_loss.detach()}

    return [opt_g, opt_d], step


def plain_cgan(gan: GAN, device: str) -> tuple[list[torch.optim.Optimizer], Step]:
    """cGAN: fakes take the real batch's labels; one D step with the hinge loss on the projection D's logits, one G
    step (``-E[D(G(z, c), c)]``) on the same fakes, EMA."""
    hp, G, D, ema = gan.hparams, gan.generator, gan.discriminator, _ema(gan)
    opt_g = torch.optim.Adam(G.parameters(), lr=hp.lr, betas=tuple(hp.betas))
    opt_d = torch.optim.Adam(D.parameters(), lr=hp.lr, betas=tuple(hp.betas))

    def step(i: int, real: Tensor, labels: Tensor) -> dict[str, Tensor]:
        n = len(real)
        c = F.one_hot(labels, hp.num_classes).float()
        fake = G(torch.randn(n, hp.latent_dim, device=device), c)
        D.requires_grad_(True)
        d_loss = F.relu(1.0 - D(real, c)).mean() + F.relu(1.0 + D(fake.detach(), c)).mean()
        _update(opt_d, d_loss)
        D.requires_grad_(False)
        g_loss = -D(fake, c).mean()
        _update(opt_g, g_loss)
        ema(n)
        return {"loss/d": d_loss.detach(), "loss/g": g_loss.detach()}

    return [opt_g, opt_d], step


def plain_wgan(gan: GAN, device: str) -> tuple[list[torch.optim.Optimizer], Step]:
    """WGAN-GP (or clipping): every batch one critic step, ``E[D(G(z))] - E[D(x)] + lambda GP`` on interpolates;
    after every ``n_critic``-th batch one G step (``-E[D(G(z))]``) on new latents and one EMA step, as ganzoo's
    batch end does."""
    hp, G, D, ema = gan.hparams, gan.generator, gan.discriminator, _ema(gan)
    if hp.lipschitz == "gp":
        opt_g = torch.optim.Adam(G.parameters(), lr=hp.lr, betas=tuple(hp.betas))
        opt_d = torch.optim.Adam(D.parameters(), lr=hp.lr, betas=tuple(hp.betas))
    else:
        opt_g, opt_d = torch.optim.RMSprop(G.parameters(), lr=hp.lr), torch.optim.RMSprop(D.parameters(), lr=hp.lr)

    def step(i: int, real: Tensor, labels: Tensor) -> dict[str, Tensor]:
        n = len(real)
        D.requires_grad_(True)
        with torch.no_grad():
            fake = G(torch.randn(n, hp.latent_dim, device=device))
        d_loss = D(fake).mean() - D(real).mean()
        if hp.lipschitz == "gp":
            eps = torch.rand(n, 1, 1, 1, device=device)
            xhat = (eps * real + (1 - eps) * fake).requires_grad_(True)
            (grad,) = torch.autograd.grad(D(xhat).sum(), xhat, create_graph=True)
            d_loss = d_loss + hp.gp_weight * (grad.flatten(1).norm(dim=1) - 1.0).square().mean()
        _update(opt_d, d_loss)
        if hp.lipschitz == "clip":
            with torch.no_grad():
                for p in D.parameters():
                    p.clamp_(-hp.clip_value, hp.clip_value)
        losses = {"loss/d": d_loss.detach()}
        if (i + 1) % hp.n_critic == 0:
            D.requires_grad_(False)
            g_loss = -D(G(torch.randn(n, hp.latent_dim, device=device))).mean()
            _update(opt_g, g_loss)
            losses["loss/g"] = g_loss.detach()
            ema(n)
        return losses

    return [opt_g, opt_d], step


def plain_stylegan2(gan: GAN, device: str) -> tuple[list[torch.optim.Optimizer], Step]:
    """StyleGAN2 as NVIDIA's training loop runs it: Gmain (non-saturating loss); Greg (path length on half the batch,
    weighted by ``pl_weight * g_reg_interval``) every ``g_reg_interval`` batches if ``pl_weight``; Dmain (logistic loss
    on reals and on fresh fakes, which update ``w_avg``); Dreg (R1 on reals, weighted by ``r1_gamma / 2 *
    d_reg_interval``) every ``d_reg_interval`` batches; style mixing and DiffAugment as the recipe sets them; Adam with
    lr and betas adjusted for the lazy intervals; EMA."""
    hp, G, D, ema = gan.hparams, gan.generator, gan.discriminator, _ema(gan)
    optimizers = []
    for net, k in ((G, hp.g_reg_interval), (D, hp.d_reg_interval)):
        ratio = k / (k + 1)
        betas = (hp.betas[0] ** ratio, hp.betas[1] ** ratio)
        optimizers.append(torch.optim.Adam(net.parameters(), lr=hp.lr * ratio, betas=betas, eps=1e-8))
    opt_g, opt_d = optimizers
    pl_mean = torch.zeros([], device=device)
    layers = torch.arange(G.num_ws, device=device)[None, :, None]

    def augment(x: Tensor) -> Tensor:
        return diff_augment(x, hp.augment) if hp.augment else x

    def run_G(n: int, c: Tensor, update_emas: bool = False) -> tuple[Tensor, Tensor]:
        z = torch.randn(n, hp.latent_dim, device=device)
        ws = G.mapping(z, c, update_emas=update_emas)
        if hp.style_mixing_prob > 0:  # styles from a random layer on come from a second z, for the whole batch
            cutoff = torch.randint(1, G.num_ws, [], device=device)
            cutoff = torch.where(torch.rand([], device=device) < hp.style_mixing_prob, cutoff, G.num_ws)
            ws = torch.where(layers >= cutoff, G.mapping(torch.randn_like(z), c), ws)
        return G.synthesis(ws, noise_mode="random"), ws

    def step(i: int, real: Tensor, labels: Tensor) -> dict[str, Tensor]:
        n = len(real)
        c = F.one_hot(labels, hp.num_classes).float() if hp.num_classes else real.new_zeros(n, 0)
        losses = {}
        # Gmain, Greg
        G.requires_grad_(True)
        D.requires_grad_(False)
        fake, _ = run_G(n, c)
        losses["loss/g"] = F.softplus(-D(augment(fake), c)).mean()
        _update(opt_g, losses["loss/g"])
        if hp.pl_weight and i % hp.g_reg_interval == 0:
            m = max(n // 2, 1)
            fake, ws = run_G(m, c[:m])
            noise = torch.randn_like(fake) / math.sqrt(fake.shape[2] * fake.shape[3])
            (grad,) = torch.autograd.grad((fake * noise).sum(), ws, create_graph=True)
            lengths = grad.square().sum(dim=2).mean(dim=1).sqrt()
            mean = pl_mean.lerp(lengths.mean(), 0.01)
            pl_mean.copy_(mean.detach())
            penalty = (lengths - mean).square()
            # fake * 0: every parameter takes part in the step, as in NVIDIA's loss
            _update(opt_g, (fake[:, 0, 0, 0] * 0 + penalty).mean() * (hp.pl_weight * hp.g_reg_interval))
            losses["penalty/pl"] = penalty.mean()
        # Dmain, Dreg
        G.requires_grad_(False)
        D.requires_grad_(True)
        with torch.no_grad():
            fake, _ = run_G(n, c, update_emas=True)
        losses["loss/d"] = F.softplus(-D(augment(real), c)).mean() + F.softplus(D(augment(fake), c)).mean()
        _update(opt_d, losses["loss/d"])
        if hp.r1_gamma and i % hp.d_reg_interval == 0:
            real = real.detach().requires_grad_(True)
            logits = D(augment(real), c).flatten()
            (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
            r1 = grad.square().sum(dim=(1, 2, 3))
            _update(opt_d, (logits * 0 + r1).mean() * (hp.r1_gamma / 2 * hp.d_reg_interval))
            losses["penalty/r1"] = r1.mean()
        ema(n)
        return {k: v.detach() for k, v in losses.items()}

    return [opt_g, opt_d], step


def plain_progan(gan: GAN, device: str) -> tuple[list[torch.optim.Optimizer], Step]:
    """ProGAN at its final stage (alpha 1): one critic step, ``E[D(G(z))] - E[D(x)] + lambda GP + eps_drift
    E[D(x)^2]``, then one G step (``-E[D(G(z))]``) and one EMA step. Adam with a parameter group per stage, as a
    progressive loop adds them; the to_rgb/from_rgb of earlier stages are frozen (no gradient, no update)."""
    hp, G, D, ema = gan.hparams, gan.generator, gan.discriminator, _ema(gan)

    def adam(net: torch.nn.Module, rgb: torch.nn.ModuleList) -> torch.optim.Optimizer:
        base = [*net.format.parameters()] if net is G else []
        base += [*net.conv0.parameters()] + ([] if net is G else [*net.fc.parameters(), *net.out.parameters()])
        groups = [{"params": [*base, *rgb[0].parameters()]}]
        groups += [{"params": [*block.parameters(), *rgb[s + 1].parameters()]} for s, block in enumerate(net.blocks)]
        return torch.optim.Adam(groups, lr=hp.lr, betas=tuple(hp.betas), eps=1e-8)

    opt_g, opt_d = adam(G, G.to_rgb), adam(D, D.from_rgb)
    d_params = [p for p in D.parameters() if p.requires_grad]

    def step(i: int, real: Tensor, labels: Tensor) -> dict[str, Tensor]:
        n = len(real)
        for p in d_params:
            p.requires_grad_(True)
        with torch.no_grad():
            fake = G(torch.randn(n, hp.latent_dim, device=device))
        real_scores = D(real)
        eps = torch.rand(n, 1, 1, 1, device=device)
        xhat = (eps * real + (1 - eps) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(D(xhat).sum(), xhat, create_graph=True)
        gp = (grad.flatten(1).norm(dim=1) - 1.0).square().mean()
        d_loss = D(fake).mean() - real_scores.mean() + hp.gp_weight * gp + hp.drift_weight * real_scores.square().mean()
        _update(opt_d, d_loss)
        for p in d_params:
            p.requires_grad_(False)
        g_loss = -D(G(torch.randn(n, hp.latent_dim, device=device))).mean()
        _update(opt_g, g_loss)
        ema(n)
        return {"loss/d": d_loss.detach(), "loss/g": g_loss.detach()}

    return [opt_g, opt_d], step


def _decay(gan: GAN, optimizers: list[torch.optim.Optimizer]) -> Callable[[int], None]:
    """The translators' schedule by hand: after each batch, ``lr = lr0 * linear_decay(images seen)``."""
    hp, seen = gan.hparams, [0]

    def step(n: int) -> None:
        seen[0] += n
        for opt in optimizers:
            for group in opt.param_groups:
                group["lr"] = hp.lr * linear_decay(seen[0], hp.lr_constant_kimg, hp.lr_decay_kimg)

    return step


def plain_pix2pix(gan: GAN, device: str) -> tuple[list[torch.optim.Optimizer], Step]:
    """Pix2Pix: ``fake = G(a)``; one D step on the (input, output) pairs, ``(softplus(-D(a, b)) + softplus(D(a,
    fake))) / 2``; one G step, ``softplus(-D(a, fake)) + lambda_l1 |fake - b|``; the learning-rate schedule."""
    hp, G, D, ema = gan.hparams, gan.generator, gan.discriminator, _ema(gan)
    opt_g = torch.optim.Adam(G.parameters(), lr=hp.lr, betas=tuple(hp.betas))
    opt_d = torch.optim.Adam(D.parameters(), lr=hp.lr, betas=tuple(hp.betas))
    decay = _decay(gan, [opt_g, opt_d])

    def step(i: int, a: Tensor, b: Tensor) -> dict[str, Tensor]:
        fake = G(a)
        D.requires_grad_(True)
        d_loss = 0.5 * (F.softplus(-D(torch.cat([a, b], 1))).mean()
                        + F.softplus(D(torch.cat([a, fake.detach()], 1))).mean())  # fmt: skip
        _update(opt_d, d_loss)
        D.requires_grad_(False)
        g_adv = F.softplus(-D(torch.cat([a, fake], 1))).mean()
        l1 = (fake - b).abs().mean()
        _update(opt_g, g_adv + hp.lambda_l1 * l1)
        ema(len(a))
        decay(len(a))
        return {"loss/d": d_loss.detach(), "loss/g": g_adv.detach(), "loss/l1": l1.detach()}

    return [opt_g, opt_d], step


def plain_cyclegan(gan: GAN, device: str) -> tuple[list[torch.optim.Optimizer], Step]:
    """CycleGAN: one step of both generators (least-squares GAN losses, ``lambda_cycle`` times both cycle L1s,
    the identity L1s), then one of both discriminators on real images and on generated ones passed through a
    history of ``pool_size`` per direction (each image swapped with probability 1/2 for a stored one once it is
    full); EMA; the learning-rate schedule."""
    hp, ema = gan.hparams, _ema(gan)
    G, Fb, D_a, D_b = gan.generator_ab, gan.generator_ba, gan.discriminator_a, gan.discriminator_b
    opt_g = torch.optim.Adam([*G.parameters(), *Fb.parameters()], lr=hp.lr, betas=tuple(hp.betas))
    opt_d = torch.optim.Adam([*D_a.parameters(), *D_b.parameters()], lr=hp.lr, betas=tuple(hp.betas))
    decay = _decay(gan, [opt_g, opt_d])
    pools: list[list[Tensor]] = [[], []]

    def query(pool: list[Tensor], images: Tensor) -> Tensor:
        if hp.pool_size == 0:
            return images
        out = []
        for image in images.detach():
            if len(pool) < hp.pool_size:
                pool.append(image)
                out.append(image)
            elif torch.rand(()) < 0.5:
                j = int(torch.randint(len(pool), ()))
                out.append(pool[j])
                pool[j] = image
            else:
                out.append(image)
        return torch.stack(out)

    def step(i: int, a: Tensor, b: Tensor) -> dict[str, Tensor]:
        D_a.requires_grad_(False)
        D_b.requires_grad_(False)
        fake_b, fake_a = G(a), Fb(b)
        adv = (D_b(fake_b) - 1).square().mean() + (D_a(fake_a) - 1).square().mean()
        cycle = (Fb(fake_b) - a).abs().mean() + (G(fake_a) - b).abs().mean()
        loss = adv + hp.lambda_cycle * cycle
        if hp.lambda_identity:
            loss = loss + hp.lambda_identity * hp.lambda_cycle * ((G(b) - b).abs().mean() + (Fb(a) - a).abs().mean())
        _update(opt_g, loss)
        D_a.requires_grad_(True)
        D_b.requires_grad_(True)
        fake_b, fake_a = query(pools[1], fake_b), query(pools[0], fake_a)
        d_loss = 0.5 * ((D_b(b) - 1).square().mean() + D_b(fake_b).square().mean())
        d_loss = d_loss + 0.5 * ((D_a(a) - 1).square().mean() + D_a(fake_a).square().mean())
        _update(opt_d, d_loss)
        ema(len(a))
        decay(len(a))
        return {"loss/g": adv.detach(), "loss/d": d_loss.detach(), "loss/cycle": cycle.detach()}

    return [opt_g, opt_d], step


def plain_srgan(gan: GAN, device: str) -> tuple[list[torch.optim.Optimizer], Step]:
    """SRGAN / SRResNet: ``fake = G(lr)``; with a discriminator one D step, ``softplus(-D(hr)) + softplus(D(fake))``;
    one G step on the pixel MSE (or the MSE of VGG features) plus ``adversarial_weight * softplus(-D(fake))``; EMA;
    the tenfold learning-rate drop after ``lr_drop_kimg``."""
    hp, G, ema = gan.hparams, gan.generator, _ema(gan)
    D = getattr(gan, "discriminator", None)
    optimizers = [torch.optim.Adam(n.parameters(), lr=hp.lr, betas=tuple(hp.betas)) for n in (G, D) if n is not None]
    phi = gan._content[0].to(device) if gan._content else (lambda x: x)
    seen = [0]

    def step(i: int, low: Tensor, high: Tensor) -> dict[str, Tensor]:
        fake, out = G(low), {}
        if D is not None:
            D.requires_grad_(True)
            out["loss/d"] = F.softplus(-D(high)).mean() + F.softplus(D(fake.detach())).mean()
            _update(optimizers[1], out["loss/d"])
            D.requires_grad_(False)
        out["loss/content"] = F.mse_loss(phi(fake), phi(high))
        loss = out["loss/content"]
        if D is not None:
            out["loss/g"] = F.softplus(-D(fake)).mean()
            loss = loss + hp.adversarial_weight * out["loss/g"]
        _update(optimizers[0], loss)
        ema(len(low))
        seen[0] += len(low)
        if hp.lr_drop_kimg is not None and seen[0] >= 1000 * hp.lr_drop_kimg:
            for opt in optimizers:
                for group in opt.param_groups:
                    group["lr"] = 0.1 * hp.lr
        return {k: v.detach() for k, v in out.items()}

    return optimizers, step


PLAIN: dict[str, Callable[[GAN, str], tuple[list[torch.optim.Optimizer], Step]]] = {
    "srgan": plain_srgan,
    "dcgan": plain_dcgan,
    "cgan": plain_cgan,
    "wgan": plain_wgan,
    "stylegan2": plain_stylegan2,
    "pix2pix": plain_pix2pix,
    "cyclegan": plain_cyclegan,
    "progan": plain_progan,
}


def check_optimizers(gan: GAN, plain: list[torch.optim.Optimizer]) -> None:
    """The plain loop's optimizers have ganzoo's classes, parameters and settings."""
    ours = gan.configure_optimizers()
    if isinstance(ours, tuple) and len(ours) == 2 and isinstance(ours[1], list):  # (optimizers, schedulers)
        ours = ours[0]
    ours = ours if isinstance(ours, list | tuple) else [ours]
    for a, b in zip(plain, ours, strict=True):
        groups = [[{k: v for k, v in g.items() if k not in ("params", "initial_lr")} for g in o.param_groups]
                  for o in (a, b)]  # fmt: skip
        params = [[id(p) for g in o.param_groups for p in g["params"]] for o in (a, b)]
        if type(a) is not type(b) or groups[0] != groups[1] or params[0] != params[1]:
            raise SystemExit(
                f"{gan.variant}: the plain loop's {type(a).__name__} {groups[0]} is not ganzoo's {type(b).__name__} "
                f"{groups[1]}, or updates other parameters: update the plain loop"
            )


# --------------------------------------------------------------------------------------------------
# Measurements


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _unchanged(net: torch.nn.Module, ref: torch.nn.Module) -> bool:
    return all(torch.equal(a.cpu(), b) for a, b in zip(net.parameters(), ref.parameters(), strict=True))


def _check_trained(label: str, gan: GAN, base: GAN, batches: int, losses: dict[str, Tensor] | None = None) -> None:
    """Losses finite, and every discriminator, generator and EMA changed: the loop really trained."""
    bad = [k for k, v in (losses or {}).items() if not torch.isfinite(v).all()]
    nets = [n for n in gan.ddp_networks if n.startswith("discriminator")]
    if batches >= gan.hparams.get("n_critic", 1):  # WGAN's first generator step comes after n_critic batches
        nets += [n for n in gan.ddp_networks if not n.startswith("discriminator")]
        nets += [f"{n}_ema" for n in gan.ema_networks]
    same = [name for name in nets if _unchanged(getattr(gan, name), getattr(base, name))]
    if bad or same:
        raise SystemExit(f"{label}: non-finite {bad} or unchanged {same}: the loop did not train")


def plain_run(base: GAN, batches: list[Batch], warmup: int, device: str) -> tuple[float, GAN]:
    """The plain loop on a copy of ``base``: seconds of the batches after ``warmup``, and the trained copy."""
    gan = copy.deepcopy(base).to(device)
    for name in gan.ddp_networks:
        getattr(gan, name).train()
    optimizers, step = PLAIN[gan.variant](gan, device)
    check_optimizers(gan, optimizers)
    images_seen = 0  # the loop's clock, as ganzoo keeps one (the schedules count batches by i)
    start = time.perf_counter()
    for i, (real, labels) in enumerate(batches):
        if i == warmup:
            _sync(device)
            start = time.perf_counter()
        losses = step(i, real, labels)
        images_seen += len(real)
    _sync(device)
    seconds = time.perf_counter() - start
    assert images_seen == sum(len(real) for real, _ in batches)
    _check_trained(f"{gan.variant} plain loop", gan, base, len(batches), losses)
    return seconds, gan


class Loader:
    """The batches as one iterable for ``Trainer.fit`` (a list would be taken for a list of data loaders)."""

    def __init__(self, batches: list[Batch]) -> None:
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class Timer(L.Callback):
    """Wall time from the end of the warm-up batches to the end of the last batch, the module's batch end included."""

    def __init__(self, warmup: int, device: str) -> None:
        self.warmup, self.device, self.start, self.end = warmup, device, 0.0, 0.0

    def on_train_batch_end(self, trainer: L.Trainer, gan: GAN, outputs, batch, batch_idx: int) -> None:
        gan.end_batch(batch)  # counters, EMA, schedules (idempotent: the module's own hook then does nothing)
        _sync(self.device)
        self.end = time.perf_counter()
        if gan.batches_seen == self.warmup:
            self.start = self.end


def ganzoo_run(
    base: GAN, batches: list[Batch], warmup: int, device: str, precision: str = "32-true", options: dict | None = None
) -> tuple[float, GAN]:
    """``Trainer.fit`` on a copy of ``base``: seconds of the batches after ``warmup``, and the trained copy."""
    gan, timer = copy.deepcopy(base), Timer(warmup, device)
    if options and options.get("compile"):
        torch._dynamo.reset()  # each copy would otherwise count towards dynamo's recompile limit
    callbacks = [timer] + ([TrainingOptions(**options)] if options else [])
    trainer = L.Trainer(
        accelerator=device, devices=1, precision=precision, max_epochs=1, limit_train_batches=len(batches),
        num_sanity_val_steps=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=callbacks,
    )  # fmt: skip
    trainer.fit(gan, train_dataloaders=Loader(batches))
    if gan.batches_seen != len(batches):
        raise SystemExit(f"{gan.variant} ganzoo: trained {gan.batches_seen} batches of {len(batches)}")
    _check_trained(f"{gan.variant} ganzoo", gan, base, len(batches))
    return timer.end - timer.start, gan


def upscale_speed(base: GAN, device: str, size: tuple[int, int] = (800, 1000), tile: int = 256) -> str:
    """``gan.upscale`` of one ``size`` (h, w) input, whole and in ``tile`` tiles: megapixels of output per second."""
    gan = copy.deepcopy(base).to(device).eval()
    x = torch.rand(1, 3, *size, device=device) * 2 - 1
    speeds = []
    for t in (None, tile):
        gan.upscale(x[..., :64, :64], tile=t)  # warm-up
        _sync(device)
        start = time.perf_counter()
        y = gan.upscale(x, tile=t)
        _sync(device)
        speeds.append(y[0, 0].numel() / 1e6 / (time.perf_counter() - start))
    return f"upscale {size[1]}x{size[0]}: whole {speeds[0]:.2f} MP/s, {tile}-px tiles {speeds[1]:.2f} MP/s"


def sampling_ips(base: GAN, device: str, n: int) -> float | str:
    """Images per second of ``gan.sample`` (batches of 256), or of ``gan.translate`` at 256x256 (batches of 16);
    for super-resolution :func:`upscale_speed`."""
    if base.task == "super-resolution":
        return upscale_speed(base, device)
    gan = copy.deepcopy(base).to(device).eval()
    if gan.task == "translation":
        n = max(n // 16, 1)  # a 256x256 translation costs far more than a small sample
        images = {d: torch.rand(n, gan.channels(d), 256, 256, device=device) * 2 - 1 for d in gan.directions}
        run = lambda: [gan.translate(x, d, batch_size=16) for d, x in images.items()]  # noqa: E731
        n *= len(images)
    else:
        run = lambda: gan.sample(n, seed=0, batch_size=256)  # noqa: E731
    run()  # warm-up
    _sync(device)
    start = time.perf_counter()
    run()
    _sync(device)
    return n / (time.perf_counter() - start)


def growth_costs(recipe: Recipe, device: str, repeats: int = 5) -> list[list[str]]:
    """ProGAN: the milliseconds one growth step costs at each stage change (median of ``repeats``): the new layers
    of G, D and the EMA generator initialised and appended to both optimizers (:meth:`ProGAN.grow` inside a fit),
    and the re-wrap of both networks in DistributedDataParallel that ``gan_ddp`` then does (a 1-process gloo group:
    the wrapping and its parameter broadcast, without a second process to send to)."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    if not dist.is_initialized():
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29517")
        dist.init_process_group("gloo", rank=0, world_size=1)
    rows = []
    for stage in range(1, len(recipe.hparams["channels"])):
        grow_ms, wrap_ms = [], []
        for _ in range(repeats):
            gan = registry.create(recipe.variant, **recipe.hparams).to(device)
            while gan.stage < stage - 1:
                gan.grow()
            optimizers = gan.configure_optimizers()

            class Holder:  # what grow() reads from its trainer: the optimizers
                pass

            holder = Holder()
            holder.optimizers = optimizers
            gan._trainer = holder
            _sync(device)
            start = time.perf_counter()
            gan.grow()
            _sync(device)
            grow_ms.append(1000 * (time.perf_counter() - start))
            gan._trainer = None
            start = time.perf_counter()
            wrapped = [DistributedDataParallel(net) for net in (gan.generator, gan.discriminator)]
            _sync(device)
            wrap_ms.append(1000 * (time.perf_counter() - start))
            assert sum(len(g["params"]) for g in optimizers[0].param_groups) == len(list(gan.generator.parameters()))
            del wrapped
        res = 4 * 2**stage
        rows.append([recipe.name, f"{res // 2} -> {res}", f"{statistics.median(grow_ms):.1f}",
                     f"{statistics.median(wrap_ms):.1f}"])  # fmt: skip
    return rows


def measure_recipe(recipe: Recipe, modes: list[tuple[str, str, dict]], args: argparse.Namespace) -> list[list[str]]:
    """The table rows of one recipe: the plain loop and ganzoo's fp32 loop alternating, then ganzoo's speed options."""
    device = args.device
    torch.manual_seed(0)
    base = at_final_stage(registry.create(recipe.variant, **recipe.hparams))
    period = schedule_period(base)
    batches_timed = args.batches or math.ceil(30 / period) * period
    batches = make_batches(base, recipe, args.warmup + batches_timed, device)
    speed = sampling_ips(base, device, args.sample) if args.sample else "-"
    sample = f"{speed:,.0f}" if isinstance(speed, float) else speed

    def measure(label: str, results: list[float], run: Callable[..., float], *run_args) -> None:
        torch.set_num_threads(args.threads)  # the same for every run, whatever a Trainer set up
        torch.manual_seed(len(results))  # run r of either loop draws the same random numbers
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        results.append(batches_timed * recipe.batch_size / run(base, batches, args.warmup, device, *run_args)[0])
        print(f"{recipe.name:20s} {label:40s} {results[-1]:10.1f} img/s", flush=True)

    rows, plain = [], []
    for label, precision, options in modes:
        ours: list[float] = []
        peak = 0.0
        try:
            for r in range(args.repeats):
                # Alternate which loop goes first; the speed options are set against the fp32 plain runs.
                for which in ("plain", "ganzoo") if r % 2 == 0 else ("ganzoo", "plain"):
                    if which == "plain" and label == "fp32":
                        measure("plain fp32", plain, plain_run)
                    elif which == "ganzoo":
                        measure(f"ganzoo {label}", ours, ganzoo_run, precision, options)
                        if device == "cuda":
                            peak = max(peak, torch.cuda.max_memory_allocated() / 2**20)
        except Exception as e:  # a speed option this recipe cannot run: say why in its row
            if label == "fp32":
                raise
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:100].replace("|", "/")
            rows.append(
                [recipe.name, label, str(recipe.batch_size), str(batches_timed), "", "", f"failed: {reason}", "", ""]
            )
            continue
        ref, ips = statistics.median(plain), statistics.median(ours)
        rows.append([
            recipe.name, label, str(recipe.batch_size), str(batches_timed), f"{ref:,.1f}", f"{ips:,.1f}",
            f"{ips / ref:.3f}", sample if label == "fp32" else "", f"{peak:,.0f}" if device == "cuda" else "-",
        ])  # fmt: skip
    return rows


def main() -> None:
    default_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", default=",".join(sorted(p.stem for p in RECIPES.glob("*.yaml"))),
                        help="comma-separated recipe names (default: all)")  # fmt: skip
    parser.add_argument("--batches", type=int, help="timed batches per measurement (default: 30 rounded up to a "
                        "multiple of the recipe's schedule: 30, or 32 for stylegan2-mnist-32)")  # fmt: skip
    parser.add_argument("--warmup", type=int, default=5, help="untimed batches before them (default 5)")
    parser.add_argument("--repeats", type=int, default=3, help="measurements of each loop, alternating (default 3)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=default_threads, help=f"torch CPU threads ({default_threads})")
    parser.add_argument("--sample", type=int, default=1024, help="images for the sampling column; 0 to skip")
    parser.add_argument("--output", type=Path, help="also write the table (and its header line) to this file")
    args = parser.parse_args()
    names = [n.strip() for n in args.recipes.split(",") if n.strip()]
    unknown = [n for n in names if not (RECIPES / f"{n}.yaml").is_file()]
    if unknown:
        parser.error(f"unknown recipes {unknown}; there are {sorted(p.stem for p in RECIPES.glob('*.yaml'))}")
    if (args.batches is not None and args.batches < 1) or args.warmup < 1 or args.repeats < 1:
        parser.error("--batches, --warmup and --repeats must be at least 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but CUDA is not available")

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="lightning")
    torch.set_num_threads(args.threads)
    device = args.device
    hardware = torch.cuda.get_device_name() if device == "cuda" else _cpu_name()
    header = (
        f"ganzoo {ganzoo.__version__}, torch {torch.__version__}, lightning {L.__version__}, {device}: {hardware}, "
        f"{torch.get_num_threads()} threads; --warmup {args.warmup} --repeats {args.repeats}"
    )
    print(f"# {header}", flush=True)

    modes = [("fp32", "32-true", {})]
    if device == "cuda":
        modes += [
            ("bf16", "bf16-mixed", {}),
            ("bf16 + channels_last", "bf16-mixed", {"channels_last": True}),
            ("bf16 + channels_last + compile", "bf16-mixed", {"channels_last": True, "compile": True}),
        ]
    rows, growth = [], []
    for name in names:
        recipe = load_recipe(name)
        rows += measure_recipe(recipe, modes, args)
        if recipe.variant == "progan":
            growth += growth_costs(recipe, device)

    columns = ["recipe", "mode", "batch", "timed batches", "plain img/s", "ganzoo img/s", "ganzoo/plain"]
    columns += ["sample/translate img/s"] + (["ganzoo peak memory MB"] if device == "cuda" else [])
    lines = [f"| {' | '.join(columns)} |", f"|{'---|' * len(columns)}"]
    lines += [f"| {' | '.join(row[: len(columns)])} |" for row in rows]
    if growth:
        lines += ["", "| recipe | growth | grow G, D, EMA and optimizers ms | DDP re-wrap ms |", "|---|---|---|---|"]
        lines += [f"| {' | '.join(row)} |" for row in growth]
    table = "\n".join(lines)
    print(f"\n{header}\n\n{table}")
    if args.output:
        args.output.write_text(f"{header}\n\n{table}\n")


if __name__ == "__main__":
    main()
