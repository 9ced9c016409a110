"""One process of a CPU data-parallel run of the tiny DCGAN, launched by tests/test_distributed.py as torchrun
would (LOCAL_RANK, WORLD_SIZE, MASTER_ADDR/PORT in the environment); writes its final state for comparison."""

import argparse
import os

import lightning as L
import torch

import ganzoo
from ganzoo.callbacks import GANCheckpoint, StopAt
from ganzoo.data import Synthetic

parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True)
parser.add_argument("--devices", type=int, default=1)
parser.add_argument("--batch", type=int, default=4)
parser.add_argument("--batches", type=int, default=3)
parser.add_argument("--norm", default="batch")
parser.add_argument("--ckpt-dir", help="keep checkpoints here (GANCheckpoint every batch, save_last)")
parser.add_argument("--resume", action="store_true", help="resume from --ckpt-dir/last.ckpt")
args = parser.parse_args()

torch.set_num_threads(1)
L.seed_everything(0, verbose=False)
gan = ganzoo.create(
    "dcgan", latent_dim=8, image_size=8, image_channels=1, base_channels=4, ema_kimg=0.01, norm=args.norm, lr=1e-3
)
trainer = L.Trainer(
    accelerator="cpu",
    devices=args.devices,
    strategy="gan_ddp" if args.devices > 1 else "auto",
    max_epochs=10,
    callbacks=[StopAt(batches=args.batches)]
    + ([GANCheckpoint(dirpath=args.ckpt_dir, every_n_batches=1, save_top_k=0)] if args.ckpt_dir else []),
    logger=False,
    enable_checkpointing=bool(args.ckpt_dir),
    enable_progress_bar=False,
    enable_model_summary=False,
)
ckpt_path = f"{args.ckpt_dir}/last.ckpt" if args.resume else None
trainer.fit(gan, Synthetic(num_images=64, image_size=8, batch_size=args.batch), ckpt_path=ckpt_path)
rank = trainer.global_rank
torch.save(
    {"state": gan.state_dict(), "images_seen": gan.images_seen, "batches_seen": gan.batches_seen,
     "strategy": type(trainer.strategy).__name__, "pid": os.getpid(), "torch_rng": torch.get_rng_state(),
     "optimizers": [o.state_dict() for o in trainer.optimizers]},
    f"{args.out}/rank{rank}.pt",
)  # fmt: skip
