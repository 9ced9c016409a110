"""Training and sampling throughput: ganzoo's Lightning loop next to a plain PyTorch loop.

For each recipe, both loops train the same networks (same initial weights), on the same batches of the
same shape, with the same optimizers and losses; the plain loop is what one would write by hand. They
alternate, ``--repeats`` times each, and the table gives the median images per second and their ratio
(ganzoo / plain: 1.00 means no overhead). Where CUDA is available it adds the speed options
(bf16-mixed, channels_last, torch.compile) against the fp32 plain loop.

    python benchmarks/throughput.py [--batches 30] [--repeats 3] [--recipes dcgan-mnist]

Data comes from ``ganzoo.data.Synthetic`` at the recipe's image size and batch size, so the figures
measure the training step, not the disk.
"""

from __future__ import annotations

import argparse
import copy
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
import yaml

import ganzoo
from ganzoo import losses, registry
from ganzoo.callbacks import StopAt, TrainingOptions
from ganzoo.data import Synthetic
from ganzoo.gan import GAN, _cpu_name

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def plain_dcgan_step(gan: GAN, opt_g, opt_d, real: torch.Tensor) -> None:
    """DCGAN's step written by hand: the same phases, losses and optimizers, no Lightning."""
    G, D = gan.generator, gan.discriminator
    z = torch.randn(len(real), gan.hparams.latent_dim, device=real.device)
    fake = G(z)
    D.requires_grad_(True)
    d_loss = losses.d_logistic(D(real), D(fake.detach()))
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    D.requires_grad_(False)
    g_loss = losses.g_nonsaturating(D(fake))
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()
    with torch.no_grad():
        gan.update_ema(len(real))


PLAIN_STEPS: dict[str, Callable] = {"dcgan": plain_dcgan_step}


class Timer(L.Callback):
    """Wall time from the end of the warm-up batches to the end of the run."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end = warmup, 0.0, 0.0

    def on_train_batch_end(self, trainer, gan, *args) -> None:
        if gan.device.type == "cuda":
            torch.cuda.synchronize()
        if trainer.fit_loop.epoch_loop.batch_progress.total.completed + 1 == self.warmup:
            self.start = time.perf_counter()
        self.end = time.perf_counter()


def recipe_setup(name: str) -> tuple[str, dict, int, int]:
    config = yaml.safe_load((RECIPES / f"{name}.yaml").read_text())
    model = config["model"]
    cls_name = model["class_path"].split(".")[-1]
    variant = next(v for v, info in registry.variants().items() if info.cls.__name__ == cls_name)
    data = config["data"]["init_args"]
    return variant, dict(model.get("init_args", {})), int(data["batch_size"]), int(data["image_size"])


def datamodule(gan: GAN, batch: int, size: int, batches: int) -> Synthetic:
    return Synthetic(num_images=batch * batches, image_channels=gan.hparams.image_channels, image_size=size,
                     batch_size=batch)  # fmt: skip


def lightning_ips(gan: GAN, dm: Synthetic, batches: int, warmup: int, device: str, precision: str, opts) -> float:
    timer = Timer(warmup)
    trainer = L.Trainer(
        accelerator=device, devices=1, precision=precision, max_epochs=1, limit_train_batches=batches,
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[timer, StopAt(batches=batches), TrainingOptions(**opts)],
    )  # fmt: skip
    trainer.fit(gan, dm)
    return (batches - warmup) * dm.batch_size / (timer.end - timer.start)


def plain_ips(gan: GAN, dm: Synthetic, batches: int, warmup: int, device: str) -> float:
    gan = gan.to(device).train()
    opt_g, opt_d = gan.configure_optimizers()
    step = PLAIN_STEPS[gan.variant]
    dm.setup()
    for i, (real, _) in enumerate(dm.train_dataloader()):
        if i == warmup:
            _sync(device)
            start = time.perf_counter()
        step(gan, opt_g, opt_d, real.to(device, non_blocking=True))
    _sync(device)
    return (batches - warmup) * dm.batch_size / (time.perf_counter() - start)


def sampling_ips(gan: GAN, device: str, n: int = 1024) -> float:
    gan = gan.to(device).eval()
    gan.sample(64, seed=0)
    _sync(device)
    start = time.perf_counter()
    gan.sample(n, seed=0, batch_size=256)
    _sync(device)
    return n / (time.perf_counter() - start)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def peak_memory_mb(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the process's peak RSS (Linux: KiB)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", nargs="*", default=sorted(p.stem for p in RECIPES.glob("*.yaml")))
    parser.add_argument("--batches", type=int, default=30, help="batches per measurement (default 30)")
    parser.add_argument("--warmup", type=int, default=5, help="batches not timed (default 5)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating measurements of each loop")
    args = parser.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    hardware = torch.cuda.get_device_name() if device == "cuda" else _cpu_name()
    print(f"# ganzoo {ganzoo.__version__}, torch {torch.__version__}, lightning {L.__version__}, {device}: "
          f"{hardware}, {torch.get_num_threads()} threads")  # fmt: skip
    print("| recipe | mode | batch | plain img/s | ganzoo img/s | ratio | sampling img/s | peak memory MB |")
    print("|---|---|---|---|---|---|---|---|")
    modes = [("fp32", "32-true", {})]
    if device == "cuda":
        modes += [
            ("bf16", "bf16-mixed", {}),
            ("bf16 + channels_last", "bf16-mixed", {"channels_last": True}),
            ("bf16 + channels_last + compile", "bf16-mixed", {"channels_last": True, "compile": True}),
        ]
    for name in args.recipes:
        variant, hparams, batch, size = recipe_setup(name)
        if variant not in PLAIN_STEPS:
            print(f"| {name} | no plain loop for {variant} yet | | | | | | |")
            continue
        torch.manual_seed(0)
        base = registry.create(variant, **hparams)
        dm = datamodule(base, batch, size, args.batches)
        plain = []
        for _ in range(args.repeats):
            plain.append(plain_ips(copy.deepcopy(base), dm, args.batches, args.warmup, device))
        plain_fp32 = statistics.median(plain)
        for label, precision, opts in modes:
            ours = []
            for _ in range(args.repeats):
                if label == "fp32":  # interleave with the plain loop, so drift in machine load hits both
                    plain.append(plain_ips(copy.deepcopy(base), dm, args.batches, args.warmup, device))
                ours.append(lightning_ips(copy.deepcopy(base), dm, args.batches, args.warmup, device, precision, opts))
            reference = statistics.median(plain) if label == "fp32" else plain_fp32
            sample, ips = sampling_ips(copy.deepcopy(base), device), statistics.median(ours)
            print(f"| {name} | {label} | {batch} | {reference:.0f} | {ips:.0f} | {ips / reference:.3f} | "
                  f"{sample:.0f} | {peak_memory_mb(device):.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
