"""The ganzoo command, run as a user runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import ganzoo
from ganzoo import cli, registry
from tests.conftest import REPO


def run(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ganzoo.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


@pytest.mark.parametrize("command", [[], ["list"], ["info"], ["sample"], ["evaluate"], ["fit"], ["export"], ["push"]])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main([*command, "--help"])
    assert exit.value.code == 0
    assert "usage" in capsys.readouterr().out.lower()


def test_list_and_info(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "dcgan-mnist" in out and "apache-2.0" in out
    assert cli.main(["list", "--variants"]) == 0
    assert "dcgan" in capsys.readouterr().out
    assert cli.main(["info", "dcgan-mnist"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["license"] == "apache-2.0" and info["variant"] == "dcgan"
    assert info["architecture"]["parameters"]["generator"] > 0
    assert info["training"]["images_seen"] > 0


def test_sample_writes_a_grid(tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert cli.main(["sample", "dcgan-mnist", "-n", "16", "-o", str(out), "--seed", "3"]) == 0
    with Image.open(out) as im:
        assert im.size == (4 * 34 + 2, 4 * 34 + 2)  # 4x4 tiles of 32 px with 2 px padding
    again = tmp_path / "again.png"
    cli.main(["sample", "dcgan-mnist", "-n", "16", "-o", str(again), "--seed", "3"])
    assert out.read_bytes() == again.read_bytes()


@pytest.mark.parametrize(
    "args, message",
    [
        (["sample", "dcgan-mnsit"], "Did you mean: dcgan-mnist"),
        (["info", "stylegan-ffhq-typo"], "unknown pretrained model"),
        (["sample", "/no/such/folder/x"], "no model folder /no/such/folder/x"),
        (["evaluate"], "give a model NAME or --fake DIR"),
        (["evaluate", "dcgan-mnist", "--metrics", "fid,ssim"], "unknown metrics ['ssim']"),
        (["evaluate", "--fake", "/no/such/dir"], "fake images need real ones"),
        (["evaluate", "--fake", "/no/such/dir", "--real", "/no/such/dir"], "'/no/such/dir' does not exist"),
    ],
)
def test_errors_are_one_clear_line(args, message):
    out = run(*args)
    assert out.returncode == 1
    assert message in out.stderr and "Traceback" not in out.stderr


def test_fit_without_data_says_what_to_set(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "GANZOO_DATA"}
    out = subprocess.run(
        [sys.executable, "-m", "ganzoo.cli", "fit", "--recipe", "dcgan-mnist", "--trainer.max_epochs=1"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip
    assert out.returncode == 1
    assert "GANZOO_DATA" in out.stderr and "Traceback" not in out.stderr


def test_recipe_parses_to_the_registered_model():
    from lightning.pytorch.cli import LightningCLI

    from ganzoo.data import ImageDataModule
    from ganzoo.gan import GAN

    for path in sorted((REPO / "recipes").glob("*.yaml")):
        c = LightningCLI(
            GAN, ImageDataModule, subclass_mode_model=True, subclass_mode_data=True, run=False,
            args=["--config", str(path), "--data=ganzoo.data.Synthetic"], save_config_callback=None,
        )  # fmt: skip
        entry = registry.get_pretrained(path.stem)
        assert c.model.variant == entry.variant
        if entry.folder:
            shipped = json.loads((registry.shipped_dir("checkpoints") / entry.folder / "config.json").read_text())
            expected = dict(shipped["hparams"])
            if c.model.hparams.get("class_names") is None:  # filled in from the data at fit time
                expected.pop("class_names", None)
            assert {k: v for k, v in c.model.hparams.items() if k in expected} == expected


def fit_args(
    tmp_path: Path, data_overrides: list[str], recipe: tuple[str, str] = ("--recipe", "dcgan-mnist")
) -> list[str]:
    return [
        "fit", *recipe, *data_overrides,
        "--trainer.max_epochs=1", "--trainer.limit_train_batches=3", "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false", f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}",
    ]  # fmt: skip


def check_fit_export_load(tmp_path: Path) -> None:
    ckpts = sorted((tmp_path / "runs" / "dcgan-mnist" / "checkpoints").glob("last.ckpt"))
    assert ckpts, "ganzoo fit wrote no checkpoint"
    assert cli.main(["export", str(ckpts[0]), str(tmp_path / "exported")]) == 0
    gan = ganzoo.load(tmp_path / "exported")
    assert gan.batches_seen == 3 and gan.images_seen == 3 * 128
    assert gan.sample(2, seed=0).shape == (2, 1, 32, 32)
    recipe = (tmp_path / "exported" / "training_config.yaml").read_text()
    assert "limit_train_batches: 3" in recipe and "ganzoo.models.dcgan.DCGAN" in recipe
    card = (tmp_path / "exported" / "README.md").read_text()
    assert "| images seen | 384 " in card


def test_fit_recipe_then_export_then_load_synthetic(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    synthetic = ["--data=ganzoo.data.Synthetic", "--data.image_size=32", "--data.batch_size=128",
                 "--data.num_images=512"]  # fmt: skip
    assert cli.main(fit_args(tmp_path, synthetic, recipe=("--config", str(REPO / "recipes" / "dcgan-mnist.yaml")))) == 0
    check_fit_export_load(tmp_path)


def test_fit_recipe_on_real_mnist_from_another_folder(tmp_path, monkeypatch, data_root):
    # --recipe NAME is the shipped recipe from any folder.
    monkeypatch.chdir(tmp_path)
    assert cli.main(fit_args(tmp_path, [])) == 0
    check_fit_export_load(tmp_path)


def test_export_refuses_a_foreign_checkpoint(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    out = run("export", str(tmp_path / "other.ckpt"), str(tmp_path / "out"))
    assert out.returncode == 1 and "not written by a ganzoo model" in out.stderr


def test_readme_model_table_is_generated_from_the_registry(capsys):
    cli.main(["list", "--markdown"])
    table = capsys.readouterr().out.strip()
    readme = (REPO / "README.md").read_text()
    assert readme.split("<!-- models:start -->")[1].split("<!-- models:end -->")[0].strip() == table
