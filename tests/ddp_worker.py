"""One process of a CPU data-parallel run of a variant's tiny config, launched by tests/test_distributed.py as torchrun
would (LOCAL_RANK, WORLD_SIZE, MASTER_ADDR/PORT in the environment); writes its final state for comparison, and the
random draws it made: the latents of each batch, a probe of the global RNG where they are drawn (what noise inputs
and dropout draw from), the DiffAugment parameters and the gradient-penalty interpolation weights."""

import argparse
import json
import os

import lightning as L
import torch

import ganzoo
from ganzoo import losses, registry
from ganzoo.callbacks import GANCheckpoint, InitFrom, StopAt
from ganzoo.data import Synthetic

parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True)
parser.add_argument("--variant", default="dcgan")
parser.add_argument("--hparams", default="{}", help="JSON overrides of the variant's tiny config")
parser.add_argument("--devices", type=int, default=1)
parser.add_argument("--batch", type=int, default=4)
parser.add_argument("--batches", type=int, default=3)
parser.add_argument("--ckpt-dir", help="keep checkpoints here (GANCheckpoint every batch, save_last)")
parser.add_argument("--resume", action="store_true", help="resume from --ckpt-dir/last.ckpt")
parser.add_argument("--init-from", help="start from this model's generator (ganzoo.callbacks.InitFrom)")
parser.add_argument("--ab-files", help="a translator trains on these AB files (Paired, or Unpaired for CycleGAN) "
                    "with crops and flips, instead of synthetic pairs")  # fmt: skip
args = parser.parse_args()

torch.set_num_threads(1)
L.seed_everything(0, verbose=False)
hparams = {**registry.get_variant(args.variant).tiny, **json.loads(args.hparams)}
gan = ganzoo.create(args.variant, **hparams)
draws = {"latents": [], "rng": [], "augment": [], "gp_eps": []}

if hasattr(gan, "training_latents"):  # a generator of noise (a translator takes images)
    latents = gan.training_latents

    def recorded_latents(n):
        with torch.random.fork_rng():  # what the global RNG gives inside training_step (after a resume restored it)
            draws["rng"].append(torch.rand(4))
        draws["latents"].append(latents(n).clone())
        return draws["latents"][-1]

    gan.training_latents = recorded_latents

if args.variant == "stylegan2":
    from ganzoo.models import stylegan2

    augment = stylegan2.diff_augment

    def recorded_augment(x, policy):
        with torch.random.fork_rng():  # the parameters this call draws, applied to a fixed probe
            draws["augment"].append(augment(torch.ones_like(x), policy))
        return augment(x, policy)

    stylegan2.diff_augment = recorded_augment

penalty = losses.gradient_penalty


def recorded_penalty(critic, real, fake, eps=None):
    eps = torch.rand(len(real), device=real.device, dtype=real.dtype) if eps is None else eps  # as the loss draws it
    draws["gp_eps"].append(eps.clone())
    return penalty(critic, real, fake, eps)


losses.gradient_penalty = recorded_penalty


trainer = L.Trainer(
    accelerator="cpu",
    devices=args.devices,
    strategy="gan_ddp" if args.devices > 1 else "auto",
    max_epochs=10,
    callbacks=[StopAt(batches=args.batches)]
    + ([InitFrom(args.init_from)] if args.init_from else [])
    + ([GANCheckpoint(dirpath=args.ckpt_dir, every_n_batches=1, save_top_k=0)] if args.ckpt_dir else []),
    logger=False,
    enable_checkpointing=bool(args.ckpt_dir),
    enable_progress_bar=False,
    enable_model_summary=False,
)
ckpt_path = f"{args.ckpt_dir}/last.ckpt" if args.resume else None
data = Synthetic.matching(gan, num_images=64, batch_size=args.batch)
if args.ab_files:
    from ganzoo.data import Paired, Unpaired

    size = hparams["image_size"]
    data = (Unpaired if args.variant == "cyclegan" else Paired)(
        root=args.ab_files, load_size=size + 8, crop_size=size, batch_size=args.batch
    )
trainer.fit(gan, data, ckpt_path=ckpt_path)
rank = trainer.global_rank
torch.save(
    {"state": gan.state_dict(), "images_seen": gan.images_seen, "batches_seen": gan.batches_seen,
     "strategy": type(trainer.strategy).__name__, "pid": os.getpid(), "torch_rng": torch.get_rng_state(),
     "optimizers": [o.state_dict() for o in trainer.optimizers], "draws": draws, "started_from": gan.started_from},
    f"{args.out}/rank{rank}.pt",
)  # fmt: skip
