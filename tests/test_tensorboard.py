"""Training you can watch: a recipe run logs its losses, learning rates and sample grids to TensorBoard, read back
here with TensorBoard's own event reader."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import yaml
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ganzoo import cli

REPO = Path(__file__).resolve().parents[1]


def test_a_recipe_run_writes_losses_learning_rates_and_sample_grids_to_tensorboard(tmp_path, capsys):
    recipe = yaml.safe_load((REPO / "recipes" / "dcgan-mnist.yaml").read_text())
    for callback in recipe["trainer"]["callbacks"]:
        if callback["class_path"].endswith("SampleGrid"):
            callback["init_args"] = {"every_n_kimg": 0.032, "num": 16}  # every 2 batches of 16
    config = tmp_path / "dcgan-mnist.yaml"
    config.write_text(yaml.safe_dump(recipe))
    argv = ["fit", "--config", str(config), "--data=ganzoo.data.Synthetic", "--data.image_size=32",
            "--data.batch_size=16", "--data.num_images=256", "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=5", "--trainer.log_every_n_steps=1", "--trainer.accelerator=cpu",
            "--trainer.enable_progress_bar=false", f"--trainer.default_root_dir={tmp_path / 'runs'}"]  # fmt: skip
    assert cli.main(argv) == 0
    logs = tmp_path / "runs" / "dcgan-mnist" / "run-0" / "logs"
    assert f"watch them with: tensorboard --logdir {logs}" in capsys.readouterr().err

    events = EventAccumulator(str(logs / "version_0"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    scalars = {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}
    for tag in ("loss/d", "loss/g"):
        assert len(scalars[tag]) == 5 and all(np.isfinite(list(scalars[tag].values()))), tag
    lr = np.float32(0.0002)  # the recipe's, as TensorBoard keeps it
    assert set(scalars["lr/generator"].values()) == set(scalars["lr/discriminator"].values()) == {lr}
    kimg = scalars["progress/kimg"]

    grids = events.Images("samples")
    assert [round(kimg[g.step], 3) for g in grids] == [0.032, 0.064]  # on the scalars' axis, at the kimg asked for
    for g in grids:  # the very image SampleGrid wrote to samples/
        logged = np.asarray(Image.open(io.BytesIO(g.encoded_image_string)))
        written = logs / "version_0" / "samples" / f"kimg={kimg[g.step]:08.3f}.png"
        assert np.array_equal(logged, np.asarray(Image.open(written).convert(logged_mode(logged))))
    assert (g.width, g.height) == (4 * 34 + 2, 4 * 34 + 2)  # 16 samples of 32x32, 2 px apart


def logged_mode(pixels: np.ndarray) -> str:
    return "RGB" if pixels.ndim == 3 and pixels.shape[2] == 3 else "L"
