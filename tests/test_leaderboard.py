"""The committed leaderboard is what benchmarks/leaderboard.py writes, and the model cards state its numbers."""

import importlib.util
import json

import pytest

import ganzoo
from ganzoo import cards, hub, metrics, registry
from tests.conftest import REPO

BOARD = json.loads((REPO / "benchmarks" / "leaderboard.json").read_text())


def leaderboard_module():
    spec = importlib.util.spec_from_file_location("leaderboard", REPO / "benchmarks" / "leaderboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_markdown_is_generated_from_the_json():
    assert (REPO / "benchmarks" / "leaderboard.md").read_text() == leaderboard_module().markdown(BOARD)


def test_every_row_carries_its_protocol_and_rows_are_grouped_by_it():
    for row in BOARD["rows"]:
        p = row["protocol"]
        assert row["key"] == metrics.comparison_key(p)
        assert {"ganzoo", "torch", "torchmetrics"} <= set(p["versions"]) and p["hardware"] and p["wall_seconds"] > 0
        if p.get("task") == "super-resolution":  # every benchmark image's numbers kept
            assert p["scale"] == 4 and set(p["benchmarks"]) == {"Set5", "Set14", "BSD100"}
            for b, info in p["benchmarks"].items():
                assert all(len(row["metrics"][f"{m}/{b}"]["values"]) == info["num"] for m in ("psnr", "ssim", "detail"))
            continue
        assert p["feature_network"]["name"] == "inception-v3-tf" and len(p["feature_network"]["sha256"]) == 64
        assert "TF1 bilinear" in p["feature_network"]["preprocessing"]
        assert {"ganzoo", "torch", "torchmetrics"} <= set(p["versions"]) and p["hardware"] and p["wall_seconds"] > 0
        assert p["version"] == metrics.PROTOCOL_VERSION and p["tf32"] is False and p["statistics"] == "float64"
        if p.get("task") == "translation":  # every reference pair, each image's numbers kept
            pairs = p["pairs"]
            assert pairs["num"] == p["generated"]["num"] == 200 and pairs["size"] == [256, 256]
            assert len(pairs["inputs"]) == len(pairs["targets"]) == 64 and p["against"] in ("target", "input")
            assert all(len(row["metrics"][k]["values"]) == 200 for k in ("l1", "psnr", "ssim"))
            assert {"fid", "kid"} <= set(row["metrics"]) and p["kid"]["subset_size"] == 200
            continue
        assert p["generated"]["num"] >= 2000 and len(p["generated"]["seeds"]) >= 3
        assert len(row["metrics"]["fid"]["values"]) == len(p["generated"]["seeds"])
        assert p["real"]["num"] >= 2000 and "test split" in p["real"]["set"] and len(p["real"]["digest"]) == 64
    md = (REPO / "benchmarks" / "leaderboard.md").read_text()
    assert md.count("\n## ") - ("## Not measured here" in md) == len({r["key"] for r in BOARD["rows"]})


def test_the_real_data_rows_and_every_shipped_checkpoint_are_on_the_board():
    rows = {r["name"]: r for r in BOARD["rows"]}
    cifar = rows["real: cifar10 train"]
    assert cifar["kind"] == "real" and cifar["metrics"]["kid"]["mean"] < 0.005  # train and test: one distribution
    for name in ganzoo.list():
        entry = registry.get_pretrained(name)
        if not entry.folder or registry.get_variant(entry.variant).task in registry.IMAGE_TASKS:
            continue
        row = rows[name]
        weights = registry.shipped_dir("checkpoints") / entry.folder / hub.WEIGHTS_NAME
        assert row["protocol"]["generated"]["checkpoint_sha256"] == hub.file_sha256(weights), f"{name}: re-measure"
        real = rows[f"real: {entry.dataset} train"]
        assert real["key"] == row["key"]  # measured against the same reference, so the two compare
        assert row["metrics"]["fid"]["mean"] > real["metrics"]["fid"]["mean"]


TRANSLATORS = [n for n in ganzoo.list(task="translation") if registry.get_pretrained(n).folder]


@pytest.mark.parametrize("name", TRANSLATORS)
def test_every_shipped_translator_has_a_row_per_direction_beside_its_baselines(name):
    """Each direction of a shipped translator, measured on these weights, in a table with the input itself and the
    mean training target (and, two-way, its cycle). pix2pix-maps beats both baselines on L1 and on SSIM (the mean
    map's SSIM is the hard one: 0.679, as flat maps score high on SSIM)."""
    entry = registry.get_pretrained(name)
    weights = hub.file_sha256(registry.shipped_dir("checkpoints") / entry.folder / hub.WEIGHTS_NAME)
    gan = hub.load(name)
    mine = [r for r in BOARD["rows"] if r["name"] == name]
    assert sorted(r["protocol"]["generated"]["direction"] for r in mine) == sorted(gan.directions)
    for row in mine:
        assert row["kind"] == "model" and row["protocol"]["generated"]["checkpoint_sha256"] == weights
        assert row["protocol"]["against"] == "target"
        table = {r.get("label"): r for r in BOARD["rows"] if r["key"] == row["key"] and r["kind"] == "reference"}
        assert {"input itself", "mean training target"} <= set(table)
        if len(gan.directions) == 2:
            assert table["cycle"]["of"] == name and table["cycle"]["protocol"]["against"] == "input"
        if name == "pix2pix-maps":
            m = row["metrics"]
            photo, mean = table["input itself"]["metrics"], table["mean training target"]["metrics"]
            assert m["l1"]["mean"] < min(photo["l1"]["mean"], mean["l1"]["mean"])
            assert m["ssim"]["mean"] > max(photo["ssim"]["mean"], mean["ssim"]["mean"])


@pytest.mark.parametrize("name", [n for n in ganzoo.list() if registry.get_pretrained(n).folder])
def test_shipped_model_cards_state_the_leaderboard_numbers(name):
    entry = registry.get_pretrained(name)
    folder = registry.shipped_dir("checkpoints") / entry.folder
    measured = registry.measured(name, hub.file_sha256(folder / hub.WEIGHTS_NAME))
    assert measured, f"{name} has no leaderboard row for its shipped weights"
    card = (folder / hub.CARD_NAME).read_text()
    gan = hub.load_folder(folder)
    assert card == cards.model_card(gan, name, entry, measured=measured)  # regenerate: leaderboard.py --rewrite
    headline = "psnr/Set5" if gan.task == "super-resolution" else "fid"
    value = next(r for r in measured if r["kind"] == "model")["metrics"][headline]["mean"]
    assert f"{value:.4g}" in card and "model-index:" in card
    label = "PSNR (dB) Set5" if gan.task == "super-resolution" else "FID-"
    assert any(key.startswith(label) for key in hub.info(name)["metrics"])


def test_the_readme_translation_table_states_the_leaderboards_numbers():
    readme = (REPO / "README.md").read_text()
    module = leaderboard_module()
    begin, stop = module.README_TABLES["translation"]
    table = readme[readme.index(begin) + len(begin) : readme.index(stop)]
    assert table == module.readme_translation_table(BOARD)  # regenerate: leaderboard.py --rewrite
    rows = [r for r in BOARD["rows"] if r["protocol"].get("task") == "translation"]
    for r in rows:
        m = r["metrics"]
        cells = f"{m['l1']['mean']:.3f} | {m['psnr']['mean']:.2f} | {m['ssim']['mean']:.3f} | {m['fid']['mean']:.1f} |"
        assert cells in table, f"README: {r['name']} should read {cells} (benchmarks/leaderboard.json)"
    assert len(rows) >= 9 or not TRANSLATORS  # pix2pix-maps, cyclegan-maps both ways, their baselines and cycles


def test_the_readme_sr_table_states_the_leaderboards_numbers():
    readme = (REPO / "README.md").read_text()
    module = leaderboard_module()
    begin, stop = module.README_TABLES["super-resolution"]
    assert readme[readme.index(begin) + len(begin) : readme.index(stop)] == module.readme_sr_table(BOARD)
