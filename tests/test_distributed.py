"""2-process CPU data parallelism (gloo) through the gan_ddp strategy."""

import os
import socket
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO, assert_same_optimizer_states


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_workers(out, devices: int, batch: int, norm: str, batches: int = 3, extra: tuple = ()) -> list[dict]:
    """Start ``devices`` worker processes as torchrun would and return each rank's final state."""
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": str(devices),
           "NODE_RANK": "0", "PYTHONPATH": str(REPO)}  # fmt: skip
    args = [sys.executable, "-m", "tests.ddp_worker", "--out", str(out), "--devices", str(devices)]
    args += ["--batch", str(batch), "--norm", norm, "--batches", str(batches), *extra]
    procs = [
        subprocess.Popen(args, env={**env, "LOCAL_RANK": str(r)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for r in range(devices)
    ]
    logs = [p.communicate(timeout=300)[0].decode() for p in procs]
    for p, log in zip(procs, logs, strict=True):
        assert p.returncode == 0, log[-3000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(devices)]


@pytest.mark.slow
def test_two_ranks_hold_identical_networks(tmp_path):
    ranks = run_workers(tmp_path, devices=2, batch=4, norm="batch")
    assert {r["strategy"] for r in ranks} == {"GANDDPStrategy"}
    assert ranks[0]["pid"] != ranks[1]["pid"]
    for key, value in ranks[0]["state"].items():
        torch.testing.assert_close(ranks[1]["state"][key], value, rtol=0, atol=0, msg=key)
    # The clock counts every process's images once.
    assert [r["images_seen"] for r in ranks] == [3 * 2 * 4] * 2
    assert [r["batches_seen"] for r in ranks] == [3, 3]


@pytest.mark.slow
def test_two_ranks_of_batch_b_match_one_process_of_batch_2b(tmp_path):
    (tmp_path / "two").mkdir()
    (tmp_path / "one").mkdir()
    two = run_workers(tmp_path / "two", devices=2, batch=4, norm="none")[0]
    one = run_workers(tmp_path / "one", devices=1, batch=8, norm="none")[0]
    assert two["images_seen"] == one["images_seen"] == 24
    initial = torch.load(tmp_path / "two" / "rank0.pt", weights_only=True)["state"]
    for key, value in one["state"].items():
        torch.testing.assert_close(two["state"][key], value, rtol=1e-5, atol=1e-5, msg=key)
    assert any(not torch.equal(initial[k], v) for k, v in one["state"].items())


@pytest.mark.slow
def test_two_rank_resume_is_exact(tmp_path):
    """2 ranks: 3 batches, stop, resume to 6 == 6 straight (every rank's weights, optimizers and RNG)."""
    for d in ("straight", "resumed"):
        (tmp_path / d).mkdir()
    straight = run_workers(tmp_path / "straight", devices=2, batch=4, norm="batch", batches=6)
    ckpt = ("--ckpt-dir", str(tmp_path / "ckpt"))
    run_workers(tmp_path / "resumed", devices=2, batch=4, norm="batch", batches=3, extra=ckpt)
    resumed = run_workers(tmp_path / "resumed", devices=2, batch=4, norm="batch", batches=6, extra=(*ckpt, "--resume"))
    for a, b in zip(straight, resumed, strict=True):
        assert a["batches_seen"] == b["batches_seen"] == 6
        for key, value in a["state"].items():
            torch.testing.assert_close(b["state"][key], value, rtol=0, atol=0, msg=key)
        assert_same_optimizer_states(a["optimizers"], b["optimizers"])
        assert torch.equal(a["torch_rng"], b["torch_rng"])
