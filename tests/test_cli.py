"""The ganzoo command, run as a user runs it."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
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


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["list"],
        ["info"],
        ["sample"],
        ["mix"],
        ["translate"],
        ["upscale"],
        ["evaluate"],
        ["fit"],
        ["export"],
        ["push"],
    ],
)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main([*command, "--help"])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    assert "usage" in out.lower()
    if command == ["fit"]:  # the recipe comes first, before LightningCLI's hundred options
        assert out.startswith("usage: ganzoo fit (--recipe NAME | --config FILE)")


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


@pytest.fixture(scope="module")
def mistakes(tmp_path_factory) -> Path:
    """What the mistakes below point at: a folder that is not a model, image folders (one with a truncated PNG),
    a run folder of a short fit, an empty Hugging Face home."""
    tmp = tmp_path_factory.mktemp("mistakes")
    (tmp / "not-a-model").mkdir()
    (tmp / "not-a-model" / "notes.txt").write_text("hello")
    for folder in ("real", "broken"):
        (tmp / folder).mkdir()
        for i in range(4):
            Image.new("RGB", (8, 8), (60 * i, 0, 0)).save(tmp / folder / f"{i}.png")
    data = (tmp / "broken" / "2.png").read_bytes()
    (tmp / "broken" / "2.png").write_bytes(data[: len(data) // 2])
    (tmp / "hf-home").mkdir()
    return tmp


# (arguments, extra environment, the key word of the fix). "{tmp}" is the `mistakes` folder, "{repo}" this checkout.
# fmt: off
MISTAKES = {
    "sample -n 0": (["sample", "dcgan-mnist", "-n", "0"], {}, "at least 1"),
    "sample --nrow 0": (["sample", "dcgan-mnist", "--nrow", "0"], {}, "at least 1"),
    "sample -n not a number": (["sample", "dcgan-mnist", "-n", "x"], {}, "invalid int value"),
    "seed below 0": (["sample", "dcgan-mnist", "--seed", "-1"], {}, "from 0 to 4294967295"),
    "seed above 2**32-1": (["sample", "dcgan-mnist", "--seed", "4294967296"], {}, "from 0 to 4294967295"),
    "more seeds than -n": (["sample", "dcgan-mnist", "--seed", "1,2,3", "-n", "2"], {}, "leave out -n"),
    "--device cuda without CUDA": (["sample", "dcgan-mnist", "--device", "cuda"], {}, "--device cpu"),
    "unknown --device": (["sample", "dcgan-mnist", "--device", "gpu0"], {}, "cpu, cuda, cuda:N or mps"),
    "output without an image extension": (["sample", "dcgan-mnist", "-o", "{tmp}/samples"], {}, ".png"),
    "mix output without an image extension": (["mix", "stylegan2-mnist-32", "-o", "{tmp}/mix.txt"], {}, ".png"),
    "--styles outside the layers": (["mix", "stylegan2-mnist-32", "--styles", "0-99"], {}, "has 8 style layers"),
    "--styles reversed": (["mix", "stylegan2-mnist-32", "--styles", "6-2"], {}, "FIRST < LAST"),
    "--styles not a range": (["mix", "stylegan2-mnist-32", "--styles", "coarse"], {}, "e.g. 0-6"),
    "empty --rows": (["mix", "stylegan2-mnist-32", "--rows", ""], {}, "e.g. 1,2,3"),
    "empty --cols": (["mix", "stylegan2-mnist-32", "--cols", ","], {}, "e.g. 1,2,3"),
    "evaluate --num-samples 1": (["evaluate", "dcgan-mnist", "--num-samples", "1"], {}, "at least 2"),
    "evaluate --num-real 1": (["evaluate", "dcgan-mnist", "--num-real", "1"], {}, "at least 2"),
    "evaluate a truncated image": (
        ["evaluate", "--fake", "{tmp}/broken", "--real", "{tmp}/real", "--metrics", "kid", "--batch-size", "2"],
        {}, "broken/2.png",
    ),
    "evaluate without NAME or --fake": (["evaluate"], {}, "give a model NAME or --fake DIR"),
    "evaluate an unknown metric": (["evaluate", "dcgan-mnist", "--metrics", "fid,ssim"], {}, "choose from"),
    "evaluate --fake without --real": (["evaluate", "--fake", "{tmp}/real"], {}, "need real ones"),
    "evaluate a missing folder": (["evaluate", "--fake", "/no/such/dir", "--real", "{tmp}/real"], {}, "does not exist"),
    "push without a token": (
        ["push", "{repo}/checkpoints/dcgan-mnist", "--repo-id", "you/dcgan"], {"HF_HOME": "{tmp}/hf-home"},
        "huggingface-cli login",
    ),
    "push without network": (
        ["push", "{repo}/checkpoints/dcgan-mnist", "--repo-id", "you/dcgan"],
        {"HF_HOME": "{tmp}/hf-home", "HF_TOKEN": "hf_test", "HF_ENDPOINT": "http://127.0.0.1:9"}, "check the network",
    ),
    "push to a malformed repo id": (["push", "{repo}/checkpoints/dcgan-mnist", "--repo-id", "dcgan"], {}, "owner/name"),
    "info on a folder that is not a model": (["info", "{tmp}/not-a-model"], {}, "config.json"),
    "sample on a file that is not a model": (["sample", "{tmp}/not-a-model/notes.txt"], {}, ".ckpt"),
    "sample on a missing path": (["sample", "/no/such/folder/x"], {}, "no model folder or checkpoint"),
    "name in the wrong case": (["sample", "DCGAN-MNIST"], {}, "Did you mean: dcgan-mnist"),
    "misspelt name": (["info", "dcgan-mnsit"], {}, "Did you mean: dcgan-mnist"),
    "demo of a misspelt name": (["demo", "dcgan-mnsit"], {}, "Did you mean: dcgan-mnist"),
    "unknown command": (["smaple", "dcgan-mnist"], {}, "invalid choice"),
    "export from a folder that is not a run": (["export", "{tmp}/not-a-model", "{tmp}/out"], {}, "run folder"),
    "fit without arguments": (["fit"], {}, "--recipe NAME | --config FILE"),
    "fit --config that does not exist": (["fit", "--config", "dcgan-mnist.yaml"], {}, "--recipe dcgan-mnist"),
    "fit --recipe that does not exist": (["fit", "--recipe", "dcgan-mnsit"], {}, "Did you mean: dcgan-mnist"),
    "fit with a misspelt override": (["fit", "--recipe", "dcgan-mnist", "--trainer.max_epoch=1"], {},  # a prefix
                                     "did you mean --trainer.max_epochs?"),
    "fit with a misspelt model option": (["fit", "--recipe", "dcgan-mnist", "--model.latent_dimm=8"], {},
                                         "did you mean --model.latent_dim?"),
    "fit with a wrong value": (["fit", "--recipe", "dcgan-mnist", "--data.batch_size=big"], {}, "expected int"),
    "fit --ckpt_path last with nothing to resume": (
        ["fit", "--recipe", "dcgan-mnist", "--trainer.default_root_dir={tmp}/no-runs", "--ckpt_path", "last"], {},
        "--ckpt_path last-or-new",
    ),
    "fit --ckpt_path to a missing file": (["fit", "--recipe", "dcgan-mnist", "--ckpt_path", "{tmp}/x.ckpt"], {},
                                          "no such checkpoint file"),
    "fit --trainer.devices that is not a number": (["fit", "--recipe", "dcgan-mnist", "--trainer.devices=two"], {},
                                                   "give a number"),
}
# fmt: on


@pytest.fixture(scope="module")
def mistake_outputs(mistakes) -> dict[str, subprocess.CompletedProcess]:
    """Every mistake run as a user runs it (a fresh `python -m ganzoo.cli` each), three at a time."""
    from concurrent.futures import ThreadPoolExecutor

    def one(case: str) -> subprocess.CompletedProcess:
        args, env, _ = MISTAKES[case]
        args = [a.replace("{tmp}", str(mistakes)).replace("{repo}", str(REPO)) for a in args]
        env = {k: v.replace("{tmp}", str(mistakes)) for k, v in env.items()}
        if "HF_HOME" in env:  # no token from the environment either
            env.setdefault("HF_TOKEN", "")
        return run(*args, cwd=mistakes, env=env)  # a fit that wrongly starts writes its run there

    with ThreadPoolExecutor(3) as pool:
        return dict(zip(MISTAKES, pool.map(one, MISTAKES), strict=True))


@pytest.mark.parametrize("case", list(MISTAKES))
def test_every_cli_mistake_is_one_line_that_names_the_fix(case, mistake_outputs, data_root):
    if case == "--device cuda without CUDA" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = mistake_outputs[case]
    text = (out.stdout + out.stderr).strip()
    assert out.returncode != 0, text
    assert "Traceback" not in text, text
    assert len(text.splitlines()) <= 3, text
    assert MISTAKES[case][2] in out.stderr, text


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_ctrl_c_during_sample_or_evaluate_is_one_line_and_exit_130(tmp_path, data_root):
    for args in (["sample", "stylegan2-mnist-32", "-n", "100000", "-o", str(tmp_path / "x.png")],
                 ["evaluate", "dcgan-mnist", "--num-samples", "100000", "--num-real", "2000"]):  # fmt: skip
        # As from a terminal: SIGINT handled (a shell's background job, as CI may be, inherits it ignored).
        proc = subprocess.Popen([sys.executable, "-m", "ganzoo.cli", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
        try:
            while _cpu_seconds(proc.pid) < 10:  # past the imports (about 4 s): generating or measuring
                time.sleep(0.2)
            proc.send_signal(signal.SIGINT)
            stderr = proc.communicate(timeout=120)[1]
        finally:
            proc.kill()
        assert proc.returncode == 130, stderr
        assert "Traceback" not in stderr and stderr.strip().splitlines()[-1].endswith("no output was written")
        assert not (tmp_path / "x.png").exists()


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
    # An earlier stage of a recipe (recipes/stages/NAME-stageK.yaml) trains the same variant with the same networks.
    for path in sorted((REPO / "recipes" / "stages").glob("*.yaml")):
        c = LightningCLI(
            GAN, ImageDataModule, subclass_mode_model=True, subclass_mode_data=True, run=False,
            args=["--config", str(path), "--data=ganzoo.data.Synthetic"], save_config_callback=None,
        )  # fmt: skip
        final = yaml.safe_load((REPO / "recipes" / f"{path.stem.rpartition('-stage')[0]}.yaml").read_text())
        assert c.model.variant == registry.get_pretrained(path.stem.rpartition("-stage")[0]).variant
        shape = {k: v for k, v in final["model"]["init_args"].items() if not k.startswith(("lr", "betas"))}
        assert {k: c.model.hparams[k] for k in shape} == shape


def fit_args(
    tmp_path: Path, data_overrides: list[str], recipe: tuple[str, str] = ("--recipe", "dcgan-mnist")
) -> list[str]:
    return [
        "fit", *recipe, *data_overrides,
        "--trainer.max_epochs=1", "--trainer.limit_train_batches=3", "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false", f"--trainer.default_root_dir={tmp_path / 'elsewhere'}",
    ]  # fmt: skip


def check_fit_export_load(tmp_path: Path) -> None:
    # --trainer.default_root_dir moves the whole run: checkpoints, logs and the recipe as run.
    run = tmp_path / "elsewhere" / "dcgan-mnist" / "run-0"
    assert (run / "checkpoints" / "last.ckpt").is_file(), "ganzoo fit wrote no checkpoint"
    assert (run / "logs" / "version_0" / "config.yaml").is_file()
    assert not (tmp_path / "runs").exists() and not (tmp_path / "lightning_logs").exists()
    assert cli.main(["export", str(run), str(tmp_path / "exported")]) == 0
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


def test_two_runs_in_one_folder_export_each_and_last_resumes_the_newest(tmp_path):
    base = ["fit", "--recipe", "dcgan-mnist", "--data=ganzoo.data.Synthetic", "--data.image_size=32",
            "--data.batch_size=16", "--data.num_images=128", "--trainer.accelerator=cpu",
            "--trainer.enable_progress_bar=false"]  # fmt: skip
    runs = tmp_path / "runs" / "dcgan-mnist"
    for i, batches in enumerate((2, 3)):
        out = run(*base, "--trainer.max_epochs=1", f"--trainer.limit_train_batches={batches}", cwd=tmp_path)
        assert out.returncode == 0, out.stderr[-3000:]
        assert f"ganzoo fit: new run in {Path('runs', 'dcgan-mnist', f'run-{i}')}:" in out.stderr
        # What users cannot act on is not shown: LightningCLI's args warning, tips, other libraries' deprecations.
        assert not any(w in out.stderr for w in ("args parameter", "Tip:", "deprecated")), out.stderr
    assert sorted(p.name for p in runs.iterdir()) == ["run-0", "run-1"]
    for i, batches in enumerate((2, 3)):  # each run folder exports that run
        assert cli.main(["export", str(runs / f"run-{i}"), str(tmp_path / f"export-{i}")]) == 0
        assert ganzoo.load(tmp_path / f"export-{i}").batches_seen == batches

    # --ckpt_path last: the newest run, named; it continues in its own folder, and last.ckpt stays its newest state.
    out = run(*base, "--trainer.max_epochs=2", "--trainer.limit_train_batches=3", "--ckpt_path", "last", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"ganzoo fit: resuming {Path('runs', 'dcgan-mnist', 'run-1')} from " in out.stderr
    assert sorted(p.name for p in runs.iterdir()) == ["run-0", "run-1"]
    assert not list(runs.rglob("last-v*.ckpt"))
    assert ganzoo.load(runs / "run-1" / "checkpoints" / "last.ckpt").batches_seen == 6
    assert ganzoo.load(runs / "run-0" / "checkpoints" / "last.ckpt").batches_seen == 2
    assert sorted(p.name for p in (runs / "run-1" / "logs").iterdir()) == ["version_0", "version_1"]  # nothing lost

    # last-or-new where nothing was run starts a run and says so.
    out = run(*base, "--trainer.max_epochs=1", "--trainer.limit_train_batches=1", "--ckpt_path", "last-or-new",
              "--trainer.default_root_dir=other", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"new run (no checkpoint to resume) in {Path('other', 'dcgan-mnist', 'run-0')}" in out.stderr


def test_export_refuses_a_foreign_checkpoint(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    out = run("export", str(tmp_path / "other.ckpt"), str(tmp_path / "out"))
    assert out.returncode == 1 and "not written by a ganzoo model" in out.stderr


def test_readme_model_table_is_generated_from_the_registry(capsys):
    cli.main(["list", "--markdown"])
    table = capsys.readouterr().out.strip()
    readme = (REPO / "README.md").read_text()
    assert readme.split("<!-- models:start -->")[1].split("<!-- models:end -->")[0].strip() == table


EVAL_SMALL = ["--num-samples", "8", "--metrics", "kid", "--batch-size", "8", "--device", "cpu"]


def test_info_sample_evaluate_and_load_take_the_same_names(tmp_path, data_root):
    """A registered name, a model folder, a .ckpt written by training and a Hub repo id (served by the loopback
    Hub) are accepted alike by `ganzoo info`, `ganzoo sample`, `ganzoo evaluate` and `ganzoo.load`."""
    from concurrent.futures import ThreadPoolExecutor

    import lightning as L

    from ganzoo.callbacks import GANCheckpoint, StopAt
    from ganzoo.data import Synthetic
    from tests.hub_server import HubServer

    shipped = REPO / "checkpoints" / "dcgan-mnist"
    gan = ganzoo.load("dcgan-mnist").train()
    L.Trainer(callbacks=[StopAt(batches=1), GANCheckpoint(dirpath=tmp_path / "ckpt")], logger=False,
              enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path).fit(
        gan, Synthetic(num_images=64, image_size=32, batch_size=16))  # fmt: skip
    (tmp_path / "real").mkdir()
    for i in range(8):
        Image.new("L", (32, 32), 30 * i).save(tmp_path / "real" / f"{i}.png")
    names = {"name": "dcgan-mnist", "folder": str(shipped), "checkpoint": str(tmp_path / "ckpt" / "last.ckpt"),
             "hub id": "ganzoo-test/dcgan-mnist"}  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE_"))}
    env.update(HF_HOME=str(tmp_path / "hf"), HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    load = "import sys, ganzoo; g = ganzoo.load(sys.argv[1]); print(g.variant, g.batches_seen)"
    commands = {
        (kind, what): cmd
        for kind, name in names.items()
        for what, cmd in {
            "info": ["-m", "ganzoo.cli", "info", name],
            "sample": ["-m", "ganzoo.cli", "sample", name, "-n", "4", "-o", str(tmp_path / f"{kind}.png")],
            "evaluate": ["-m", "ganzoo.cli", "evaluate", name, "--real", str(tmp_path / "real"), *EVAL_SMALL],
            "load": ["-c", load, name],
        }.items()
    }
    with HubServer() as hub:
        hub.add_repo("ganzoo-test/dcgan-mnist", shipped)
        env["HF_ENDPOINT"] = hub.url

        def one(cmd):
            return subprocess.run([sys.executable, *cmd], capture_output=True, text=True, cwd=tmp_path, env=env,
                                  timeout=300)  # fmt: skip

        with ThreadPoolExecutor(3) as pool:
            outs = dict(zip(commands, pool.map(one, commands.values()), strict=True))
    for key, out in outs.items():
        assert out.returncode == 0, f"{key}: {out.stderr[-2000:]}"
    for kind in names:
        assert json.loads(outs[kind, "info"].stdout)["variant"] == "dcgan"
        assert "KID" in outs[kind, "evaluate"].stdout
        assert outs[kind, "load"].stdout.split()[0] == "dcgan"
    # The same weights by name, folder and Hub id; the checkpoint is the model one batch further on.
    grids = {kind: (tmp_path / f"{kind}.png").read_bytes() for kind in names}
    assert grids["name"] == grids["folder"] == grids["hub id"] != grids["checkpoint"]
    assert int(outs["checkpoint", "load"].stdout.split()[1]) == int(outs["name", "load"].stdout.split()[1]) + 1


def test_export_average_from_is_the_mean_generator_of_the_runs_checkpoints(tmp_path, capsys):
    import lightning as L

    from ganzoo import hub
    from ganzoo.callbacks import GANCheckpoint, StopAt
    from ganzoo.data import Synthetic
    from tests.test_variants import datamodule_for, tiny

    gan = tiny("pix2pix")
    run = tmp_path / "run-0"
    L.Trainer(
        accelerator="cpu", max_epochs=5, logger=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[StopAt(batches=4), GANCheckpoint(dirpath=run / "checkpoints", every_n_batches=1)],
    ).fit(gan, datamodule_for(gan))  # fmt: skip
    files = [run / "checkpoints" / f"kimg=0000.{8 * b:03d}-batch={b}.ckpt" for b in (1, 2, 3, 4)]
    states = [hub.load_lightning_checkpoint(f).state_dict() for f in files]
    assert cli.main(["export", str(run), str(tmp_path / "avg"), "--average-from", "0.016"]) == 0
    averaged = ganzoo.load(tmp_path / "avg")
    exported = averaged.state_dict()
    for k, v in exported.items():
        if k.startswith("generator.") and v.is_floating_point():
            mean = sum(s[k].double() for s in states[1:]) / 3  # batches 2, 3 and 4; not batch 1
            torch.testing.assert_close(v.double(), mean, rtol=0, atol=1e-7, msg=k)
        else:  # the discriminator (and integer buffers) as at the end
            assert torch.equal(v, states[-1][k]), k
    assert any(not torch.equal(v, states[-1][k]) for k, v in exported.items() if k.startswith("generator."))
    assert averaged.averaged == {"parts": ["generator"], "kimg": [0.016, 0.024, 0.032]}
    assert averaged.images_seen == 32
    card = (tmp_path / "avg" / "README.md").read_text()
    assert (
        "| weights | generator: the mean of its weights at the run's 3 checkpoints from 0.016 to 0.032 kimg "
        "(checkpoint averaging, `ganzoo export --average-from 0.016`); the other networks as at the end |"
    ) in card
    assert cli.main(["export", str(run), str(tmp_path / "bad"), "--average-from", "1"]) != 0
    assert "--average-from 1.0 kimg lies outside the run, which is at 0.032 kimg" in capsys.readouterr().err
    assert cli.main(["export", str(run), str(tmp_path / "bad"), "--average-from", "0.03"]) != 0
    assert "from 0.03 kimg to average with it: name an earlier start" in capsys.readouterr().err
    # A generator with an EMA copy samples from the copy: averaging the generator would change nothing shown.
    ema = ganzoo.create("dcgan", latent_dim=8, image_size=8, image_channels=1, base_channels=4, ema_kimg=0.01)
    L.Trainer(
        accelerator="cpu", max_epochs=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[StopAt(batches=2), GANCheckpoint(dirpath=tmp_path / "ema", every_n_batches=1)],
    ).fit(ema, Synthetic(num_images=16, image_size=8, batch_size=8))  # fmt: skip
    with pytest.raises(ValueError, match="has an EMA copy"):
        hub.average_checkpoints(tmp_path / "ema" / "last.ckpt", 0.0)
