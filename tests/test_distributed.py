"""2-process CPU data parallelism (gloo) through the gan_ddp strategy, for every registered variant."""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO, VARIANTS, assert_same_optimizer_states

# Every variant trains here with the regularisers and random draws it has switched on: a phase that leaves a
# parameter out of its loss, or a buffer that drifts apart between ranks, fails these runs. A new variant must
# say what its regularisers are.
REGULARISED = {
    "dcgan": {"norm": "batch"},
    "cgan": {},  # spectral norm: power-iteration buffers in D
    "wgan": {"lipschitz": "gp", "n_critic": 3},
    "pix2pix": {"norm": "batch", "dropout": True},  # batch-norm buffers in G and D; dropout draws per rank
    "cyclegan": {"pool_size": 4, "lambda_identity": 0.5, "dropout": True},  # history pools, identity loss
    "progan": {"gp_weight": 10.0, "drift_weight": 0.001, "mbstd": True},  # grows and fades within the run
    # batch-norm buffers in G and D, the adversarial term, the VGG content loss (random weights: no download)
    "srgan": {"adversarial_weight": 1e-3, "content_loss": "vgg22", "vgg_pretrained": False},
    "stylegan2": {"r1_gamma": 1.0, "pl_weight": 2.0, "d_reg_interval": 2, "g_reg_interval": 2,
                  "style_mixing_prob": 0.9, "augment": "color,translation,cutout", "mbstd_group_size": 2},
}  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_workers(out, devices: int, batch: int, variant: str = "dcgan", hparams: dict | None = None,
                batches: int = 3, extra: tuple = ()) -> list[dict]:  # fmt: skip
    """Start ``devices`` worker processes as torchrun would and return each rank's final state."""
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": str(devices),
           "NODE_RANK": "0", "PYTHONPATH": str(REPO)}  # fmt: skip
    args = [sys.executable, "-m", "tests.ddp_worker", "--out", str(out), "--devices", str(devices), "--variant",
            variant, "--hparams", json.dumps(hparams or {}), "--batch", str(batch), "--batches", str(batches),
            *extra]  # fmt: skip
    procs = [
        subprocess.Popen(args, env={**env, "LOCAL_RANK": str(r)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for r in range(devices)
    ]
    logs = [p.communicate(timeout=300)[0].decode() for p in procs]
    for p, log in zip(procs, logs, strict=True):
        assert p.returncode == 0, log[-3000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(devices)]


def test_every_variant_says_which_regularisers_the_distributed_test_turns_on():
    assert set(REGULARISED) == set(VARIANTS)


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_two_ranks_train_every_variant_and_hold_identical_networks(variant, tmp_path):
    from ganzoo import registry

    ranks = run_workers(tmp_path, devices=2, batch=4, variant=variant, hparams=REGULARISED[variant], batches=4)
    assert {r["strategy"] for r in ranks} == {"GANDDPStrategy"}
    assert ranks[0]["pid"] != ranks[1]["pid"]
    # Every parameter and buffer of every network, EMA included, is bit-identical on both ranks ...
    for key, value in ranks[0]["state"].items():
        torch.testing.assert_close(ranks[1]["state"][key], value, rtol=0, atol=0, msg=key)
    assert_same_optimizer_states(ranks[0]["optimizers"], ranks[1]["optimizers"])
    # ... and training moved every network's weights.
    initial = registry.create(variant, **{**registry.get_variant(variant).tiny, **REGULARISED[variant]}).state_dict()
    for part in {k.split(".", 1)[0] for k in initial if k.endswith("weight")}:
        assert any(not torch.equal(initial[k], v) for k, v in ranks[0]["state"].items() if k.startswith(part + ".")), (
            part
        )
    # The clock counts every process's images once.
    assert [r["images_seen"] for r in ranks] == [4 * 2 * 4] * 2
    assert [r["batches_seen"] for r in ranks] == [4, 4]


@pytest.mark.slow
def test_ranks_share_the_latent_stream_but_draw_their_own_noise_augmentation_and_penalties(tmp_path):
    sg2 = run_workers(tmp_path / "sg2", 2, batch=4, variant="stylegan2", hparams=REGULARISED["stylegan2"], batches=2)
    wgan = run_workers(tmp_path / "wgan", 2, batch=4, variant="wgan", hparams=REGULARISED["wgan"], batches=2)
    one = run_workers(tmp_path / "one", 1, batch=8, variant="stylegan2", hparams=REGULARISED["stylegan2"], batches=2)
    a, b = (r["draws"] for r in sg2)
    # Latents: each rank's slice of one stream, the same stream a 1-process run of the whole batch draws.
    for za, zb, z in zip(a["latents"], b["latents"], one[0]["draws"]["latents"], strict=True):
        assert not torch.equal(za, zb)
        torch.testing.assert_close(torch.cat([za, zb]), z, rtol=0, atol=0)
    # Everything else comes from each rank's own global RNG: noise inputs, DiffAugment, gradient-penalty weights.
    assert all(not torch.equal(x, y) for x, y in zip(a["rng"], b["rng"], strict=True))
    assert len(a["augment"]) >= 2 and all(
        not torch.equal(x, y) for x, y in zip(a["augment"], b["augment"], strict=True)
    )
    a, b = (r["draws"] for r in wgan)
    assert len(a["gp_eps"]) == 2
    assert all(not torch.equal(x, y) for x, y in zip(a["gp_eps"], b["gp_eps"], strict=True))


@pytest.mark.slow
def test_two_ranks_of_batch_b_match_one_process_of_batch_2b(tmp_path):
    """Without batch statistics or per-rank random draws, 2 x batch b is 1 x batch 2b (DCGAN without batch norm)."""
    two = run_workers(tmp_path / "two", devices=2, batch=4, hparams={"norm": "none", "lr": 1e-3})[0]
    one = run_workers(tmp_path / "one", devices=1, batch=8, hparams={"norm": "none", "lr": 1e-3})[0]
    assert two["images_seen"] == one["images_seen"] == 24
    from ganzoo import registry

    initial = registry.create("dcgan", **{**registry.get_variant("dcgan").tiny, "norm": "none"}).state_dict()
    for key, value in one["state"].items():
        torch.testing.assert_close(two["state"][key], value, rtol=1e-5, atol=1e-5, msg=key)
    assert any(not torch.equal(initial[k], v) for k, v in one["state"].items())


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["dcgan", "stylegan2", "cyclegan", "progan"])
def test_two_rank_resume_is_exact(variant, tmp_path):
    """2 ranks: 3 batches, stop, resume to 6 == 6 straight (every rank's weights, optimizers, RNG and draws; for
    CycleGAN every rank's own history pools, which its discriminators see from the third batch on, and its
    unpaired file data: 16 AB files, 2 batches an epoch, each epoch's crops, flips and B draws its own)."""
    from tests.test_data import ab_folder

    hp = REGULARISED[variant]
    files = ("--ab-files", str(ab_folder(tmp_path / "data", n=16))) if variant == "cyclegan" else ()
    straight = run_workers(tmp_path / "straight", devices=2, batch=4, variant=variant, hparams=hp, batches=6,
                           extra=files)  # fmt: skip
    ckpt = ("--ckpt-dir", str(tmp_path / "ckpt"), *files)
    run_workers(tmp_path / "resumed", devices=2, batch=4, variant=variant, hparams=hp, batches=3, extra=ckpt)
    resumed = run_workers(tmp_path / "resumed", devices=2, batch=4, variant=variant, hparams=hp, batches=6,
                          extra=(*ckpt, "--resume"))  # fmt: skip
    for a, b in zip(straight, resumed, strict=True):
        assert a["batches_seen"] == b["batches_seen"] == 6
        for key, value in a["state"].items():
            torch.testing.assert_close(b["state"][key], value, rtol=0, atol=0, msg=key)
        assert_same_optimizer_states(a["optimizers"], b["optimizers"])
        assert torch.equal(a["torch_rng"], b["torch_rng"])
        if variant == "cyclegan":  # no latents
            continue
        # The resumed run's draws (batches 4 to 6) are the straight run's last ones.
        n = len(b["draws"]["rng"])
        assert n >= 3 and all(torch.equal(x, y) for x, y in zip(a["draws"]["rng"][-n:], b["draws"]["rng"], strict=True))
    if variant != "cyclegan":
        assert not torch.equal(straight[0]["draws"]["rng"][-1], straight[1]["draws"]["rng"][-1])


@pytest.mark.slow
def test_the_stylegan2_recipe_trains_on_two_processes_with_every_regulariser_on(tmp_path, data_root):
    """The issue's acceptance command: the shipped recipe, 2 CPU processes, R1 and path length every 2 batches (run
    in tmp_path, where the recipe's relative runs/ folder goes)."""
    cmd = [sys.executable, "-m", "ganzoo.cli", "fit", "--config", str(REPO / "recipes" / "stylegan2-mnist-32.yaml"),
           "--trainer.devices=2", "--trainer.accelerator=cpu", "--model.r1_gamma=1", "--model.pl_weight=2",
           "--model.d_reg_interval=2", "--model.g_reg_interval=2", "--trainer.max_epochs=1",
           "--trainer.limit_train_batches=5", "--trainer.enable_progress_bar=false",
           "--trainer.callbacks+=tests.rank_state.DumpRankState", f"--trainer.callbacks.out={tmp_path}"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert [r["batches_seen"] for r in ranks] == [5, 5] and ranks[0]["images_seen"] == 5 * 2 * 32
    for key, value in ranks[0]["state"].items():
        torch.testing.assert_close(ranks[1]["state"][key], value, rtol=0, atol=0, msg=key)
    assert_same_optimizer_states(ranks[0]["optimizers"], ranks[1]["optimizers"])
    assert ranks[0]["state"]["pl_mean"] > 0  # path length ran (batches 0, 2, 4), its mean shared
