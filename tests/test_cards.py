"""Model cards as the Hub reads them: each shipped card's metadata parsed by huggingface_hub's own card classes
(offline: ``ModelCard.validate`` asks the Hub's server), its ``model-index`` holding exactly the leaderboard's
numbers, and the card's links."""

import pytest
from huggingface_hub import ModelCard, ModelCardData, metadata_load
from huggingface_hub.repocard_data import model_index_to_eval_results

import ganzoo
from ganzoo import cards, hub, registry

SHIPPED = [n for n in ganzoo.list() if registry.get_pretrained(n).folder]


def shipped(name: str):
    entry = registry.get_pretrained(name)
    folder = registry.shipped_dir("checkpoints") / entry.folder
    return entry, folder


def leaderboard_mean(rows: list[dict], result) -> float:
    """The leaderboard's mean for the model row and metric an eval result names: a super-resolution metric by
    its type and benchmark (``psnr`` on ``Set5`` is ``psnr/Set5``), a translation's by its direction too (the end of
    its name), others by type alone."""
    models = [r for r in rows if r["kind"] == "model"]
    if models[0]["protocol"].get("task") == "super-resolution":
        key = f"{result.metric_type}/{result.dataset_type}"
    else:
        key = result.metric_type
        if models[0]["protocol"].get("task") == "translation":
            models = [r for r in models if result.metric_name.endswith(f" {r['protocol']['generated']['direction']}")]
    assert len(models) == 1, f"{result.metric_name}: no single leaderboard row"
    return models[0]["metrics"][key]["mean"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_card_metadata_parses_and_states_the_leaderboards_numbers(name):
    entry, folder = shipped(name)
    text = (folder / cards.CARD_NAME).read_text()
    card = ModelCard(text)
    data = card.data
    assert str(card) == text  # what the Hub's parser reads back is what was written
    assert ModelCardData(**data.to_dict()).to_dict() == data.to_dict()
    assert data.library_name == "ganzoo" and data.license == entry.license and entry.dataset in data.datasets
    task = registry.get_variant(entry.variant).task
    assert data.pipeline_tag == cards.PIPELINE_TAGS[task] and {"ganzoo", entry.variant} <= set(data.tags)

    measured = registry.measured(name, hub.file_sha256(folder / hub.WEIGHTS_NAME))
    models = [r for r in measured if r["kind"] == "model"]
    assert models, f"{name} has no leaderboard row for its shipped weights"
    assert data.eval_results, f"{name}: the leaderboard has rows, the card's metadata has no model-index"
    model_name, results = model_index_to_eval_results(metadata_load(folder / cards.CARD_NAME)["model-index"])
    assert model_name == name and results == data.eval_results
    # One result per measured number, each the leaderboard's own value (not rounded), none twice.
    assert len(results) == sum(len(r["metrics"]) for r in models)
    assert len({(r.metric_type, r.dataset_type, r.metric_name) for r in results}) == len(results)
    for result in results:
        assert result.task_type == cards.PIPELINE_TAGS[task]
        if task != "super-resolution":
            assert result.dataset_type == entry.dataset and result.dataset_split == "test"
        assert result.metric_value == leaderboard_mean(measured, result), f"{name}: {result.metric_name}"
    labels = [(label, m["mean"]) for _, _, label, m, _ in cards.metric_lines(measured, models_only=True)]
    assert [(r.metric_name, r.metric_value) for r in results] == labels  # named as the card's metrics table


def test_a_card_links_its_space_and_always_names_the_demo():
    entry, folder = shipped("dcgan-mnist")
    gan = hub.load_folder(folder)
    with_space = cards.model_card(gan, entry.name, entry, space="user/x")
    without = cards.model_card(gan, entry.name, entry)
    assert "Try it in the browser: [Space](https://huggingface.co/spaces/user/x)" in with_space
    assert "huggingface.co/spaces" not in without
    for text in (with_space, without):
        assert "`ganzoo demo dcgan-mnist` opens an interactive page in the browser." in text
    assert ModelCard(with_space).data.to_dict() == ModelCard(without).data.to_dict()  # a body link, not metadata
    with pytest.raises(ValueError, match="owner/name"):
        cards.model_card(gan, entry.name, entry, space="https://huggingface.co/spaces/user/x")


def test_an_unmeasured_card_has_no_model_index():
    entry, folder = shipped("dcgan-mnist")
    data = ModelCard(cards.model_card(hub.load_folder(folder), entry.name, entry)).data
    assert data.eval_results is None and "model-index" not in data.to_dict() and "model_name" not in data.to_dict()
    assert data.library_name == "ganzoo" and data.license == entry.license
