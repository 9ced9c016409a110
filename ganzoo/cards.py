"""Model cards: the README.md of a model folder, with the Hub's metadata, how the model was trained, what ganzoo's
evaluation measured, usage and limits. Plain text from a model, its registry entry and leaderboard rows: nothing
here reads or writes files or talks to the network.

The metadata is written by huggingface_hub's own ``ModelCardData``/``EvalResult`` (only its offline card classes are
used here), so that the Hub parses it as it parses any card: it renders the metrics of the ``model-index``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ganzoo import registry
from ganzoo.gan import GAN

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
SAMPLES_NAME = "samples.png"
TRAINING_CONFIG_NAME = "training_config.yaml"
SR_LABELS = {"psnr": "PSNR (dB)", "ssim": "SSIM", "detail": "Detail"}
PIPELINE_TAGS = {
    "generation": "unconditional-image-generation",
    "conditional-generation": "unconditional-image-generation",
    "translation": "image-to-image",
    "super-resolution": "image-to-image",
}


def reference_column(row: dict[str, Any]) -> str | None:
    """The column a leaderboard row fills beside a model's: ``None`` for a model's own row, ``"real data"`` for a
    data set's real-data row, a trivial baseline's label (``"input itself"``, ...) for a translation reference."""
    if row["kind"] == "model":
        return None
    return "real data" if row["kind"] == "real" else row.get("label", row["name"])


def metric_lines(rows: list[dict[str, Any]], models_only: bool = False):
    """(column, key, label, metric, protocol) per metric of leaderboard rows: ``column`` as
    :func:`reference_column`, ``metric`` the row's ``{"mean", "std", ...}``."""
    for row in rows:
        column = reference_column(row)
        if models_only and column is not None:
            continue
        p = row["protocol"]
        if p.get("task") == "super-resolution":
            protocol = (f"Y channel, {p['scale']} px shaved, the benchmarks' MATLAB-bicubic LR, whole images; key "
                        f"`{row['key']}`")  # fmt: skip
            for key, m in row["metrics"].items():
                metric, benchmark = key.split("/")
                seen = " (seen in training)" if p["benchmarks"][benchmark]["seen_in_training"] else ""
                label = f"{SR_LABELS.get(metric, metric)} {benchmark}{seen}"
                yield column, key, label, m, protocol
            continue
        n = p["generated"]["num"]
        tag = f"{n // 1000}k" if n % 1000 == 0 else str(n)
        translation = p.get("task") == "translation"
        if translation:
            protocol = (
                f"{n:,} {row['dataset']} test pairs at {'x'.join(map(str, p['pairs']['size']))}, data direction "
                f"{p['pairs']['direction']}; FID/KID on {p['feature_network']['name']}, key `{row['key']}`"
            )
        else:
            protocol = (
                f"{n:,} generated vs {p['real']['num']:,} real ({row['dataset']} test), "
                f"{p['feature_network']['name']}, key `{row['key']}`"
            )
        for key, m in row["metrics"].items():
            if key in ("l1", "psnr", "ssim"):
                label = key.upper() + (" (dB)" if key == "psnr" else "")
            elif key in ("precision", "recall"):
                label = f"{key} (k={p['pr']['k']})"
            else:
                label = f"{key.upper()}-{tag}"
            yield column, key, label + (f" {p['generated']['direction']}" if translation else ""), m, protocol


def _with_start(t: dict[str, Any], key: str, show: Callable[[float], str]) -> str:
    """A training record's figure, and where the run started from another model's weights, the sum over the chain."""
    total, start = t[key], t.get("started_from")
    while start:
        total, start = total + start[key], start.get("started_from")
    return show(t[key]) + (f" in this run; {show(total)} with what it started from" if total != t[key] else "")


def _started_from(start: dict[str, Any] | None) -> str | None:
    """Which networks a fit copied from which model (:class:`ganzoo.callbacks.InitFrom`), and that model's training."""
    if not start:
        return None
    n, s, hardware = start["images_seen"], start["train_seconds"], "; ".join(start["hardware"]) or "unrecorded hardware"
    text = f"{' and '.join(start['parts'])} of `{start['source']}`"
    if not n:  # upstream weights converted by ganzoo: trained elsewhere, its card says how
        return text + " (not trained by ganzoo: no training record)"
    text += (f", trained for {n:,} images ({n / 1000:,.1f} kimg, {start['batches_seen']:,} batches) in "
             f"{s / 3600:.2f} h on {hardware}")  # fmt: skip
    return text + (f"; which started from {_started_from(start['started_from'])}" if start.get("started_from") else "")


def _averaged(averaged: dict[str, Any] | None) -> str | None:
    """What :func:`ganzoo.hub.average_checkpoints` made of the exported networks."""
    if not averaged:
        return None
    kimg = averaged["kimg"]
    return (f"{' and '.join(averaged['parts'])}: the mean of its weights at the run's {len(kimg)} checkpoints from "
            f"{kimg[0]:g} to {kimg[-1]:g} kimg (checkpoint averaging, `ganzoo export --average-from {kimg[0]:g}`); "
            "the other networks as at the end")  # fmt: skip


def model_card(
    gan: GAN,
    name: str,
    entry: registry.Pretrained | None = None,
    *,
    license: str | None = None,
    measured: list[dict[str, Any]] | None = None,
    space: str | None = None,
) -> str:
    """The README.md of a model folder: Hub metadata, how it was trained, metrics, usage and limits.

    Args:
        gan: the model.
        name: the model's name (a registry entry's, or the folder's).
        entry: its registry entry, for the data set, licence, recipe and description.
        license: the licence when there is no entry (default ``"other"``).
        measured: leaderboard rows (:func:`ganzoo.registry.measured`) of exactly these weights: the card's metrics,
            in its table and in the metadata's ``model-index``; without them the card says the model is not measured
            yet and has no ``model-index``.
        space: a Hugging Face Space (``"user/name"``) that shows this model; the card links to it.
    """
    if space is not None and (space.count("/") != 1 or not all(space.split("/"))):
        raise ValueError(f"space must be a Space repo id 'owner/name', got {space!r}")
    t = gan.training_state()
    dataset = entry.dataset if entry else None
    lic = entry.license if entry else (license or "other")
    results = _eval_results(measured or [], PIPELINE_TAGS[gan.task])
    data = ModelCardData(
        library_name="ganzoo",
        license=lic,
        tags=["ganzoo", "gan", gan.variant, "pytorch-lightning"],
        pipeline_tag=PIPELINE_TAGS[gan.task],
        datasets=[dataset] if dataset else None,
        # model_name without results would be written as a key of its own, not as a model-index
        model_name=name if results else None,
        eval_results=results or None,
    )
    front = data.to_yaml(original_order=["library_name", "license", "tags", "pipeline_tag", "datasets"])

    rows = [
        ("variant", f"`{gan.variant}` ({type(gan).__qualname__})"),
        ("data", dataset or "see the recipe"),
        ("directions", _directions(gan, entry) if entry and gan.task == "translation" else None),
        (
            "recipe",
            f"`recipes/{entry.recipe}.yaml`, as run: `{TRAINING_CONFIG_NAME}`" if entry and entry.recipe else None,
        ),
        *(
            [("trained by", entry.source), ("weights", f"{_urls(entry)}, converted by `ganzoo.from_upstream`")]
            if entry and (entry.url or entry.files) and not t["batches_seen"]
            else [
                (
                    "batches",
                    f"{t['batches_seen']:,}"
                    + (
                        f" ({gan.generator_steps:,} generator steps)"
                        if gan.generator_steps != t["batches_seen"]
                        else ""
                    ),
                ),
                ("objective", gan.objective),
                ("images seen", _with_start(t, "images_seen", lambda n: f"{n:,} ({n / 1000:,.1f} kimg)")),
                ("hardware", "; ".join(t["hardware"]) or "not recorded"),
                (
                    "wall time of the training steps",
                    _with_start(t, "train_seconds", lambda s: f"{s / 3600:.2f} h ({s:,.0f} s)"),
                ),
                ("started from", _started_from(t.get("started_from"))),
                ("weights", _averaged(t.get("averaged"))),
            ]
        ),
        ("classes (by id)", ", ".join(gan.class_names) if gan.num_classes else None),
        ("parameters", ", ".join(f"{n} {sum(p.numel() for p in m.parameters()):,}" for n, m in gan.named_children())),
        (
            "not trained",
            f"{', '.join(sorted(gan.untrained_parts))}: not in the released weights, built fresh (random) when "
            "loaded; fitting needs TrainingOptions(train_fresh_parts=True)"
            if gan.untrained_parts
            else None,
        ),
    ]
    source = "the EMA generator" if gan.ema_networks else "the generator (this model has no EMA)"
    translator = gan.task == "translation"
    upscaler = gan.task == "super-resolution"
    if upscaler:
        usage = [f"big = gan.upscale(images)  # {gan.output_scale}x; [N, C, H, W] in [-1, 1], uint8, or PIL images "
                 "of any size (tiled when large)"]  # fmt: skip
        usage_cli = (f"or `ganzoo upscale {name} photo.png photo_x{gan.output_scale}.png` (a file or a folder). "
                     "Fine-tune with `trainer.fit(gan, ganzoo.data.SuperResolution(...))`.")  # fmt: skip
    elif translator:
        directions = " or ".join(f'direction="{d}"' for d in gan.directions)
        usage = [f"out = gan.translate(images)  # {directions}; [N, C, H, W] in [-1, 1], uint8, or PIL images"]
        usage_cli = "Fine-tune with `trainer.fit(gan, datamodule)` on (A, B) pairs."
    else:
        usage = ["images = gan.sample(16, seed=0)  # [16, C, H, W] in [-1, 1]"
                 + (", classes 0, 1, 2, ... in turn" if gan.num_classes else "")]  # fmt: skip
        if gan.num_classes:
            label = gan.class_names[-1]
            usage.append(f"images = gan.sample(16, seed=0, labels={gan.num_classes - 1})  # all of class {label!r}")
        usage_cli = f"or `ganzoo sample {name} -n 64 -o grid.png`. Fine-tune with `trainer.fit(gan, datamodule)`."
    body = [
        f"# {name}",
        "",
        f"{entry.description}." if entry and entry.description else f"A {gan.variant} model trained with ganzoo.",
        "",
        *([f"Try it in the browser: [Space](https://huggingface.co/spaces/{space})", ""] if space else []),
        "## Training",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in rows if v is not None),
        "",
        "## Samples",
        "",
        f"![samples]({SAMPLES_NAME})",
        "",
        (
            f"`{SAMPLES_NAME}`: `gan.preview()`, one fixed crop a row (of the validation images; of the first "
            f"training crops where the data has none): LR (enlarged, nearest) | bicubic | "
            f"{name} | HR, from {source}."
            if upscaler
            else f"`{SAMPLES_NAME}`: input | output pairs of `gan.preview()` (the first 8 validation inputs; the "
            f"first training inputs where the data has none), from {source}."
            if translator
            else f"`{SAMPLES_NAME}`: `gan.sample(64, seed=0)`, from {source}"
            + (", one column per class." if gan.num_classes else ".")
        ),
        "",
        "## Metrics",
        "",
    ]
    if measured:
        columns = list(dict.fromkeys(c for c, *_ in metric_lines(measured) if c is not None))
        reference = {(c, k, p): m["mean"] for c, k, _, m, p in metric_lines(measured) if c is not None}
        body += [
            "Measured by `benchmarks/leaderboard.py` (ganzoo's evaluation; the full protocol is in "
            "`benchmarks/leaderboard.json`), mean ± standard deviation "
            + (
                "over the images. Beside it, trivial translators measured the same way: the input itself, the mean "
                "of the training targets, and for a two-way model its cycle (A to B and back) against the input. "
                "L1 and SSIM against the true target, PSNR in dB; FID/KID of the outputs against the targets."
                if translator
                else "over each benchmark's images, the SR literature's way (Y channel, border shaved). Beside it, "
                "MATLAB's bicubic measured the same way. Detail is the output's mean luma difference between "
                "neighbouring pixels over the HR image's (`ganzoo.metrics.detail_ratio`): 1 is as much local "
                "contrast as the original, below is blur; it measures sharpness, not correctness."
                if upscaler
                else "over seeds. The real-data row is the same protocol applied to the training split: the best a "
                "model can do at this sample size."
            ),
            "",
            "| metric | value | " + " | ".join(columns) + " | protocol |",
            "|---" * (len(columns) + 3) + "|",
        ]
        for _, key, label, m, protocol in metric_lines(measured, models_only=True):
            refs = [reference.get((c, key, protocol)) for c in columns]
            body.append(
                f"| {label} | {m['mean']:.4g}"
                + (f" ± {m['std']:.2g}" if m["std"] is not None else "")
                + "".join(f" | {f'{v:.4g}' if v is not None else '–'}" for v in refs)
                + f" | {protocol} |"
            )
    else:
        body.append("Not measured yet: this card states no number that ganzoo's evaluation did not produce.")
    if entry and entry.published:
        body += ["", f"Published, not measured by ganzoo (another protocol and budget): {entry.published}"]
    body += [
        "",
        "## Usage",
        "",
        "```python",
        "import ganzoo",
        "",
        f'gan = ganzoo.load("{name}")',
        *usage,
        "```",
        "",
        usage_cli,
        "",
        f"`ganzoo demo {name}` opens an interactive page in the browser.",
        "",
        "## Licence and limits",
        "",
        f"Licence: {lic}."
        + (f" Upstream: {entry.source}." if entry and entry.source != "trained by ganzoo" else "")
        + " A GAN reproduces the statistics of its training data, biases included; its samples are not data.",
        "",
    ]
    # Parsed back by the Hub's own card class: a model-index it could not read raises here, not on the Hub.
    return str(ModelCard(f"---\n{front}\n---\n\n" + "\n".join(body) + "\n"))


def _eval_results(rows: list[dict[str, Any]], task_type: str) -> list[EvalResult]:
    """One ``EvalResult`` per metric of the model's own leaderboard rows (reference rows are left out): the value is
    the row's mean, as measured; the label of :func:`metric_lines` is its name.

    A super-resolution metric is measured on a benchmark (``psnr/Set5``): that benchmark is its data set and
    ``psnr`` its type, as the Hub expects a metric id. Other rows are measured on their data set's test split
    (generated vs test images; translated test pairs).
    """
    results = []
    for row in rows:
        if reference_column(row) is not None:
            continue
        p = row["protocol"]
        for _, key, label, m, _ in metric_lines([row], models_only=True):
            if p.get("task") == "super-resolution":
                metric, benchmark = key.split("/")
                where = dict(dataset_type=benchmark, dataset_name=benchmark)
            else:
                split = p["pairs"]["split"] if p.get("task") == "translation" else "test"
                metric, where = key, dict(dataset_type=row["dataset"], dataset_name=row["dataset"], dataset_split=split)
            results.append(
                EvalResult(task_type=task_type, metric_type=metric, metric_value=m["mean"], metric_name=label, **where)
            )
    return results


def _directions(gan: GAN, entry: registry.Pretrained) -> str:
    """Which way of the entry's data set each of the model's directions runs, e.g. "`a2b`: A to B of maps"."""
    ways = {"a2b": "A to B", "b2a": "B to A"}
    if entry.data_direction == "b2a":
        ways = {"a2b": "B to A", "b2a": "A to B"}
    return ", ".join(f"`{d}`: {ways[d]} of {entry.dataset}" for d in gan.directions)


def _urls(entry: registry.Pretrained) -> str:
    return entry.url or ", ".join(f"{url} (as {name})" for name, url in entry.files)
