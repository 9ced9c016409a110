"""A callback for subprocess tests: each rank writes its final module state, so a test can compare the ranks."""

import lightning as L
import torch


class DumpRankState(L.Callback):
    def __init__(self, out: str) -> None:
        self.out = out

    def on_train_end(self, trainer: L.Trainer, gan: L.LightningModule) -> None:
        state = {"state": gan.state_dict(), "batches_seen": gan.batches_seen, "images_seen": gan.images_seen,
                 "optimizers": [o.state_dict() for o in trainer.optimizers]}  # fmt: skip
        torch.save(state, f"{self.out}/rank{trainer.global_rank}.pt")
