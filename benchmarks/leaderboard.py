"""The leaderboard: every registered checkpoint that loads, measured under one protocol, with that protocol.

    python benchmarks/leaderboard.py                      # the CPU table: 2,000 images a side, seeds 0, 1, 2
    python benchmarks/leaderboard.py --num-samples 50000 --num-real 10000   # the full protocol, on a GPU
    python benchmarks/leaderboard.py --only dcgan-mnist   # re-measure some rows, keep the others
    python benchmarks/leaderboard.py --rewrite            # leaderboard.md and the model cards from the JSON only

A super-resolution model is measured the SR literature's way (:func:`ganzoo.metrics.evaluate_super_resolution`:
PSNR/SSIM on the Y channel, border shaved, on Set5, Set14 and BSD100 from their MATLAB-bicubic LR images), beside
MATLAB's bicubic as the reference row and the SRGAN paper's figures (another training budget, not ranked).

A translation model (Pix2Pix, CycleGAN) is measured on its data set's reference pairs instead (maps: the 200 val
pairs at 256x256, every direction it has): L1, PSNR and SSIM of each output against its true target, FID/KID of
the outputs against the targets. Its table holds trivial translators measured the same way as reference rows: the
input itself, the mean training target, and for a two-way model its cycle (A to B and back) against the input.

Each data set a generative model uses gets a "real data" row first: its train split (seeded subsets of the same size as
the generated sets) measured against the same reference, the test split. A model's row compares its samples
with that reference. Rows are ranked only against rows with the same comparison key (feature network and its
weights, N generated, the real set, the metric settings); ``leaderboard.md`` gives each key its own table.
Writes ``leaderboard.json`` (what the model cards and ``ganzoo info`` read) and ``leaderboard.md`` beside this
script, then the metrics sections of the shipped model cards and the README's translation table.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import ganzoo
from ganzoo import cards, hub, metrics, registry
from ganzoo.data import DataNotFoundError, Paired

HERE = Path(__file__).resolve().parent
JSON_PATH, MD_PATH = HERE / "leaderboard.json", HERE / "leaderboard.md"
README_PATH = HERE.parent / "README.md"
README_TABLES = {"translation": ("<!-- translation:start -->", "<!-- translation:end -->"),
                 "super-resolution": ("<!-- sr:start -->", "<!-- sr:end -->")}  # fmt: skip
# Datasets whose real-data row is always measured, used by a model or not.
ANCHOR_DATASETS = {"cifar10": 32}
HEADERS = {"fid": "FID-{n}", "fd_dinov2": "FD_DINOv2-{n}", "kid": "KID-{n}", "kd_dinov2": "KD_DINOv2-{n}",
           "is": "IS-{n}", "precision": "precision", "recall": "recall"}  # fmt: skip
# Published numbers to read beside ours (never ranked: other protocols). From ../shared/METRICS.md section 5.
PUBLISHED = {
    "cifar10": "Published CIFAR-10 numbers use the lossless images, 50k samples and other references (e.g. "
    "StyleGAN2-ADA conditional FID 2.42, fid50k_full vs train); ganzoo's CIFAR-10 copy is JPEG q75, so only "
    "rows in these tables compare with each other. wgan-gp-cifar10: the WGAN-GP paper reports an Inception Score "
    "of 7.86 ± 0.07 for its ResNet and 6.68 for its DCGAN-style CNN, whose code (gan_cifar.py) trains 200,000 "
    "generator steps at batch 64, 5 critic steps each; ganzoo's network has that CNN's shape at half its width "
    "(4x4 kernels, not 5x5) and was trained 1,875 generator steps (0.9% of that) on this CPU. IS is not "
    "measured here: it needs the Inception classifier's 1008-way logits, which the offline Inception file lacks "
    "(with network: --metrics is --feature-net inception-nvidia).",
    "mnist": "No common published FID protocol exists for MNIST; compare with the real-data row. stylegan2-mnist-32 "
    "stands in for a CIFAR-10 StyleGAN2 trained here: NVIDIA's conditional CIFAR-10 network reports FID 2.42 "
    "(fid50k_full) after a training run of 100M images (ADA's cifar configuration); this 2-core CPU showed the "
    "64-channel network 140k images in 35 minutes, 0.14% of that. CIFAR-10 was not tried at that budget. "
    "cgan-mnist is class-conditional; its samples cycle through the ten digits, as the data's classes do.",
    "maps": "Published maps numbers come from other protocols and are not ranked here: junyanz' pix2pix gives FID "
    "149.73 aerial to map and 102.07 map to aerial, mmgeneration's pix2pix 122.59 and 88.46 (both test with batch "
    "norm on batch statistics and dropout on, on the whole val split of 1,098 pairs, at 256x256 with 64-channel "
    "networks trained 200 epochs); ganzoo measures eval mode (deterministic) on the first 200 val pairs, so FID-200 "
    "is biased upwards by the small set (compare the reference rows, not the papers). The pix2pix paper reports "
    "maps only as human judgements (AMT) and per-pixel accuracy, not L1/SSIM.",
}
# The SRGAN paper's Table 2 (Y channel, 4 px shaved; Set5 / Set14 / BSD100), from ../shared/METRICS.md section 5.
SR_PUBLISHED = {
    "bicubic (paper)": ((28.43, 25.99, 25.94), (None, None, None)),
    "SRResNet (paper)": ((32.05, 28.49, 27.58), (0.902, 0.818, 0.762)),
    "SRGAN VGG54 (paper)": ((29.40, 26.02, 25.16), (0.847, 0.740, None)),
}
SR_NOTE = (
    "The paper's rows come from networks trained 1e6 (SRResNet) and 2e5 more (SRGAN) updates of 16 ImageNet crops "
    "and are measured on the paper's own copies of the benchmarks; they are set beside ganzoo's, not ranked. "
    "ganzoo's bicubic row is MATLAB's imresize kernel (Keys, a = -0.5, antialiased; ganzoo.data.bicubic_resize) on "
    "the staged LR images, 28.43 / 26.09 / 25.96 dB against the paper's 28.43 / 25.99 / 25.94 (the staged Set14 "
    "images differ slightly from the paper's). Scores on a benchmark a model trained on are marked *."
)
TRANSLATION_METRICS = ("l1", "psnr", "ssim", "fid", "kid")
PAIRED = ("l1", "psnr", "ssim")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-samples", type=int, default=2000, help="generated images per seed (default 2000)")
    p.add_argument("--num-real", type=int, default=2000, help="reference images from the test split (default 2000)")
    p.add_argument("--seeds", default="0,1,2", help="one repeat per seed (default 0,1,2)")
    p.add_argument("--metrics", default="fid,kid,pr", help="default fid,kid,pr (is needs NVIDIA's Inception file)")
    p.add_argument("--feature-net", default="inception")
    p.add_argument("--only", nargs="*", help="measure these entries (and their real rows) only; keep other rows")
    p.add_argument("--device", default=None)
    p.add_argument("--rewrite", action="store_true", help="write leaderboard.md and the cards from the JSON only")
    args = p.parse_args(argv)

    board = json.loads(JSON_PATH.read_text()) if JSON_PATH.is_file() else {"rows": [], "skipped": []}
    if not args.rewrite:
        seeds = [int(s) for s in args.seeds.split(",")]
        options = dict(
            metrics=args.metrics.split(","),
            seeds=seeds,
            feature_net=metrics.feature_network(args.feature_net),
            device=args.device,
            progress=True,
        )
        rows, skipped = measure(args, options, {r["name"]: r["key"] for r in board["rows"]})
        measured = {r["name"] for r in rows} | {s["name"] for s in skipped}
        board["rows"] = [r for r in board["rows"] if r["name"] not in measured] + rows
        board["skipped"] = [s for s in board.get("skipped", []) if s["name"] not in measured] + skipped
        board["command"] = " ".join(["python benchmarks/leaderboard.py", *(argv if argv is not None else sys.argv[1:])])
        board["updated"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        JSON_PATH.write_text(json.dumps(board, indent=1) + "\n")
    MD_PATH.write_text(markdown(board))
    print(f"wrote {MD_PATH}" if args.rewrite else f"wrote {JSON_PATH} and {MD_PATH}")
    for name in write_cards(board):
        print(f"wrote the model card of {name}")
    readme = README_PATH.read_text()
    for task, table in (("translation", readme_translation_table), ("super-resolution", readme_sr_table)):
        begin, stop = README_TABLES[task]
        if begin in readme:
            start, end = readme.index(begin) + len(begin), readme.index(stop)
            readme = readme[:start] + table(board) + readme[end:]
            print(f"wrote the {task} table of {README_PATH}")
    README_PATH.write_text(readme)
    return 0


def measure(args: argparse.Namespace, options: dict, existing: dict[str, str]) -> tuple[list[dict], list[dict]]:
    """Rows for the entries (all, or ``--only``'s) and their reference rows. With ``--only``, a reference row
    already on the board (``existing``: name to protocol key) is kept when it shares a key with a row measured
    now; under a changed protocol it is measured again, so that it still ranks beside the models."""
    entries = [registry.get_pretrained(n) for n in ganzoo.list(pretrained=True)]
    if args.only:
        entries = [e for e in entries if e.name in args.only or set(e.aliases) & set(args.only)]
    rows, skipped, datasets = [], [], dict(ANCHOR_DATASETS) if not args.only else {}
    references: dict[tuple[str, str], Paired] = {}
    scales: set[int] = set()
    for entry in entries:
        print(f"{entry.name}", flush=True)
        if registry.get_variant(entry.variant).task == "super-resolution":
            try:
                result = metrics.evaluate_super_resolution(entry.name, device=options["device"],
                                                           progress=options["progress"])  # fmt: skip
            except (hub.HubError, hub.CheckpointError, DataNotFoundError) as e:
                skipped.append({"name": entry.name, "reason": str(e).splitlines()[0]})
                continue
            rows.append(row(entry.name, "model", f"sr-x{result['protocol']['scale']}", result))
            scales.add(result["protocol"]["scale"])
            continue
        if registry.get_variant(entry.variant).task == "translation":
            try:
                translation_rows = measure_translator(entry, options)
            except (hub.HubError, hub.CheckpointError, DataNotFoundError) as e:
                skipped.append({"name": entry.name, "reason": str(e).splitlines()[0]})
                continue
            for r in translation_rows:
                references.setdefault((entry.dataset, r["protocol"]["pairs"]["direction"]), r.pop("_data"))
            rows += translation_rows
            continue
        # The model's own reference: its data set's test split at its resolution, num_real images drawn with seed 0.
        try:
            result = metrics.evaluate(entry.name, num_samples=args.num_samples, num_real=args.num_real, **options)
        except (hub.HubError, hub.CheckpointError) as e:  # weights to download: measured where there is a network
            skipped.append({"name": entry.name, "reason": str(e).splitlines()[0]})
            continue
        rows.append(row(entry.name, "model", entry.dataset, result))
        datasets.setdefault(entry.dataset, entry.resolution)

    def kept(name: str) -> bool:
        return existing.get(name) in {r["key"] for r in rows}

    for (dataset, direction), data in references.items():
        for label, translate in (("input itself", lambda x: x), ("mean training target", mean_target(data))):
            name = f"{label}: {dataset} {direction}"
            if args.only and kept(name):
                continue  # as the real-data rows below
            print(name, flush=True)
            result = metrics.evaluate_translation(translate, data, name=name, **translation_options(options))
            rows.append({**row(name, "reference", dataset, result), "label": label})

    for scale in sorted(scales):
        name = f"bicubic x{scale} (MATLAB)"
        if args.only and kept(name):
            continue
        print(name, flush=True)
        result = metrics.evaluate_super_resolution(metrics.bicubic_upscaler(scale), name=name, scale=scale,
                                                   device=options["device"], progress=options["progress"])  # fmt: skip
        rows.append({**row(name, "reference", f"sr-x{scale}", result), "label": "bicubic"})

    for dataset, size in datasets.items():
        if args.only and kept(f"real: {dataset} train"):
            continue  # --only keeps the real-data rows already on the board (a different protocol would not rank)
        print(f"real data: {dataset} train vs test", flush=True)
        train = [
            metrics.ImageSet.from_dataset(dataset, "train", image_size=size, num=args.num_samples, seed=s)
            for s in options["seeds"]
        ]
        reference = metrics.ImageSet.from_dataset(dataset, "test", image_size=size, num=args.num_real, seed=0)
        result = metrics.evaluate(fake=train, real=reference, **options)
        result["protocol"]["generated"]["seeds"] = options["seeds"]
        rows.append(row(f"real: {dataset} train", "real", dataset, result))
    return rows, skipped


def translation_options(options: dict) -> dict:
    return {"metrics": TRANSLATION_METRICS, "feature_net": options["feature_net"], "device": options["device"],
            "progress": options["progress"]}  # fmt: skip


def measure_translator(entry: registry.Pretrained, options: dict) -> list[dict]:
    """Rows for each direction of a translation entry on its data set's reference pairs, each with the Paired
    module it read (``_data``); a two-way model adds its cycle against the input."""
    gan = hub.load(entry.name)
    out = []
    for direction in gan.directions:
        data = metrics.reference_pairs(entry, direction)
        result = metrics.evaluate_translation(entry.name, data, direction=direction, **translation_options(options))
        out.append({**row(entry.name, "model", entry.dataset, result), "_data": data})
        if len(gan.directions) == 2:
            back = "b2a" if direction == "a2b" else "a2b"
            name = f"{entry.name}: {direction} then {back}"
            print(name, flush=True)
            cycle = lambda x, d=direction, b=back: gan.translate(gan.translate(x, d), b)  # noqa: E731
            result = metrics.evaluate_translation(cycle, data, name=name, against="input",
                                                  **translation_options(options))  # fmt: skip
            out.append({**row(name, "reference", entry.dataset, result), "label": "cycle", "of": entry.name,
                        "_data": data})  # fmt: skip
    return out


def mean_target(data: Paired):
    """A translator that answers every input with the mean of ``data``'s training targets (unjittered, resized to
    the reference size as the reference pairs are)."""
    train = data.dataset("train")
    train.train = False  # the reference pairs' resize, no random crop or flip
    mean = sum(train[i][1].double() for i in range(len(train))) / len(train)
    return lambda x: mean.float().expand(len(x), *mean.shape).clone()


def row(name: str, kind: str, dataset: str, result: dict) -> dict:
    return {"name": name, "kind": kind, "dataset": dataset, "key": metrics.comparison_key(result["protocol"]), **result}


def _cell(m: dict | None) -> str:
    if m is None:
        return "–"
    return f"{m['mean']:.4g}" + (f" ± {m['std']:.2g}" if m["std"] is not None else "")


def markdown(board: dict) -> str:
    groups: dict[str, list[dict]] = {}
    for r in board["rows"]:
        groups.setdefault(r["key"], []).append(r)
    out = [
        "# ganzoo leaderboard",
        "",
        f"Written by `{board.get('command', 'python benchmarks/leaderboard.py')}` on {board.get('updated', '?')}; "
        "the numbers, with every detail of how they were made, are in `leaderboard.json`. "
        "Mean ± sample standard deviation over the seeds (one repeat per seed). A table ranks only rows measured "
        "under the same protocol (its key); differences under about two standard deviations are ties.",
        "",
    ]
    for key, rows in sorted(groups.items(), key=lambda kv: (kv[1][0]["dataset"], kv[0])):
        p = rows[0]["protocol"]
        if p.get("task") == "translation":
            out += translation_table(key, rows)
            continue
        if p.get("task") == "super-resolution":
            out += sr_table(key, rows)
            continue
        n = p["generated"]["num"]
        tag = f"{n // 1000}k" if n % 1000 == 0 else str(n)
        names = [k for k in ("fid", "fd_dinov2", "kid", "kd_dinov2", "is", "precision", "recall")
                 if any(k in r["metrics"] for r in rows)]  # fmt: skip
        fd = next((k for k in names if k in ("fid", "fd_dinov2")), None)
        rows = sorted(rows, key=lambda r: (r["kind"] != "real", r["metrics"][fd]["mean"] if fd else 0))
        net = p["feature_network"]
        out += [
            f"## {rows[0]['dataset']}: {n:,} generated vs {p['real']['num']:,} real (protocol key `{key}`)",
            "",
            "| rank | model | " + " | ".join(HEADERS[k].format(n=tag) for k in names) + " | checkpoint | wall time |",
            "|---" * (len(names) + 4) + "|",
        ]
        rank = 0
        for r in rows:
            rank += r["kind"] == "model"
            sha = r["protocol"]["generated"].get("checkpoint_sha256", "")
            out.append(
                f"| {rank if r['kind'] == 'model' else 'ref'} | {r['name']} | "
                + " | ".join(_cell(r["metrics"].get(k)) for k in names)
                + f" | {sha[:12] or '–'} | {r['protocol']['wall_seconds']:,.0f} s |"
            )
        kid = p.get("kid")
        out += [
            "",
            f"- features: `{net['name']}`, sha256 `{net['sha256']}`; {net['preprocessing']}",
            f"- real: {p['real']['set']}; content sha256 `{p['real']['digest'][:16]}…`",
            f"- generated: {n:,} per seed, seeds {rows[0]['protocol']['generated'].get('seeds')}, quantised to uint8 "
            "as PNG; the real-data row uses seeded subsets of the train split instead",
            f"- batch {p['batch_size']}, TF32 off, float64 statistics"
            + (f"; KID {kid['subsets']} subsets of {kid['subset_size']}, kernel {kid['kernel']}" if kid else "")
            + (f"; precision/recall k = {p['pr']['k']} on the same features" if p.get("pr") else ""),
            f"- measured on {p['hardware']} with {', '.join(f'{k} {v}' for k, v in p['versions'].items())}",
        ]
        if note := PUBLISHED.get(rows[0]["dataset"]):
            out.append(f"- {note}")
        out.append("")
    if board.get("skipped"):
        out += ["## Not measured here", ""]
        out += [f"- {s['name']}: {s['reason']}" for s in board["skipped"]]
        out.append("")
    return "\n".join(out)


def translation_table(key: str, rows: list[dict]) -> list[str]:
    """One table of translations of the same reference pairs: models ranked by L1, then the reference rows."""
    p = rows[0]["protocol"]
    pairs, n = p["pairs"], p["generated"]["num"]
    names = [k for k in TRANSLATION_METRICS if any(k in r["metrics"] for r in rows)]
    headers = {"l1": "L1 ↓", "psnr": "PSNR (dB) ↑", "ssim": "SSIM ↑", "fid": f"FID-{n} ↓", "kid": f"KID-{n} ↓"}
    rows = sorted(rows, key=lambda r: (r["kind"] != "model", r["metrics"]["l1"]["mean"]))
    a, b = ("A", "B") if pairs["direction"] == "a2b" else ("B", "A")
    out = [
        f"## {rows[0]['dataset']}: translating {a} to {b}, {n} reference pairs (protocol key `{key}`)",
        "",
        "| rank | model | direction | " + " | ".join(headers[k] for k in names) + " | checkpoint | wall time |",
        "|---" * (len(names) + 5) + "|",
    ]
    rank = 0
    for r in rows:
        rank += r["kind"] == "model"
        g = r["protocol"]["generated"]
        direction = g["direction"] if r["kind"] == "model" else f"{g['direction']} vs {r['protocol']['against']}"
        cells = [f"{r['metrics'][k]['mean']:.4g} ± {r['metrics'][k]['std']:.2g}" if k in PAIRED else
                 f"{r['metrics'][k]['mean']:.4g}" for k in names]  # fmt: skip
        out.append(
            f"| {rank if r['kind'] == 'model' else 'ref'} | {r['name']} | {direction} | "
            + " | ".join(cells)
            + f" | {g.get('checkpoint_sha256', '')[:12] or '–'} | {r['protocol']['wall_seconds']:,.0f} s |"
        )
    net, kid = p["feature_network"], p["kid"]
    out += [
        "",
        f"- pairs: {pairs['data']} `{Path(pairs['root']).name}` {pairs['split']} split, the first {n} at "
        f"{pairs['size'][0]}x{pairs['size'][1]}, data direction {pairs['direction']}; inputs sha256 "
        f"`{pairs['inputs'][:16]}…`, targets `{pairs['targets'][:16]}…`",
        "- L1 (on [-1, 1]), PSNR and SSIM per image on uint8-quantised RGB, mean ± standard deviation over images: "
        + "; ".join(f"{k} {v}" for k, v in p["paired"].items()),
        f"- FID/KID of the {n} outputs against the {n} targets (a reference row: against what it names): "
        f"`{net['name']}`, sha256 `{net['sha256']}`; KID {kid['subsets']} subsets of {kid['subset_size']}",
        "- models translate in eval mode (batch norm on running statistics, no dropout); reference rows: the input "
        "itself, the mean of the training targets, a two-way model's cycle against its input",
        f"- measured on {p['hardware']} with {', '.join(f'{k} {v}' for k, v in p['versions'].items())}",
    ]
    if note := PUBLISHED.get(rows[0]["dataset"]):
        out.append(f"- {note}")
    return [*out, ""]


def sr_table(key: str, rows: list[dict]) -> list[str]:
    """One table of super-resolution at one scale: models ranked by mean PSNR over the benchmarks, the bicubic
    reference row, then the paper's figures."""
    p = rows[0]["protocol"]
    benchmarks = list(p["benchmarks"])
    mean_psnr = lambda r: sum(r["metrics"][f"psnr/{b}"]["mean"] for b in benchmarks) / len(benchmarks)  # noqa: E731
    rows = sorted(rows, key=lambda r: (r["kind"] != "model", -mean_psnr(r)))
    out = [
        f"## {p['scale']}x super-resolution: Set5, Set14, BSD100 (protocol key `{key}`)",
        "",
        "| rank | model | " + " | ".join(f"PSNR {b} (dB) ↑" for b in benchmarks)
        + " | " + " | ".join(f"SSIM {b} ↑" for b in benchmarks)
        + " | " + " | ".join(f"detail {b}" for b in benchmarks) + " | checkpoint | wall time |",
        "|---" * (3 * len(benchmarks) + 4) + "|",
    ]  # fmt: skip
    rank = 0
    for r in rows:
        rank += r["kind"] == "model"
        seen = {b: "*" if r["protocol"]["benchmarks"][b]["seen_in_training"] else "" for b in benchmarks}
        cells = [f"{r['metrics'][f'psnr/{b}']['mean']:.2f}{seen[b]}" for b in benchmarks]
        cells += [f"{r['metrics'][f'ssim/{b}']['mean']:.4f}{seen[b]}" for b in benchmarks]
        cells += [f"{r['metrics'][f'detail/{b}']['mean']:.3f}{seen[b]}" for b in benchmarks]
        sha = r["protocol"]["generated"].get("checkpoint_sha256", "")
        out.append(f"| {rank if r['kind'] == 'model' else 'ref'} | {r['name']} | " + " | ".join(cells)
                   + f" | {sha[:12] or '–'} | {r['protocol']['wall_seconds']:,.0f} s |")  # fmt: skip
    if p["scale"] == 4 and benchmarks == ["Set5", "Set14", "BSD100"]:
        for name, (psnr, ssim) in SR_PUBLISHED.items():
            cells = [f"{v:.2f}" for v in psnr] + [f"{v:.3f}" if v is not None else "–" for v in ssim]
            out.append(f"| paper | {name} | " + " | ".join(cells + ["–"] * len(benchmarks)) + " | – | – |")
    out += [
        "",
        f"- PSNR: {p['paired']['psnr']}; SSIM: {p['paired']['ssim']}; detail (ganzoo.metrics.detail_ratio: 1 is the "
        f"HR images' local contrast, below is blur, and it says nothing of correctness): {p['paired']['detail']}; "
        "mean over each benchmark's images; LR inputs: "
        + ", ".join(f"{b} {v['lr']} ({v['num']} images)" for b, v in p["benchmarks"].items()),
        f"- models run on whole images in eval mode; measured on {p['hardware']} with "
        + ", ".join(f"{k} {v}" for k, v in p["versions"].items()),
        f"- {SR_NOTE}",
    ]
    return [*out, ""]


def readme_translation_table(board: dict) -> str:
    """The README's short translation table: each direction's models, then its reference rows."""
    out = ["| model | direction | L1 ↓ | PSNR (dB) ↑ | SSIM ↑ | FID-200 ↓ |", "|---|---|---|---|---|---|"]
    rows = [r for r in board["rows"] if r["protocol"].get("task") == "translation"]
    for direction in ("a2b", "b2a"):
        group = [r for r in rows if r["protocol"]["pairs"]["direction"] == direction]
        for r in sorted(group, key=lambda r: (r["kind"] != "model", r["name"])):
            m, g = r["metrics"], r["protocol"]["generated"]
            if r["kind"] == "model":
                name, how = f"`{r['name']}`", g["direction"]
            elif r.get("label") == "cycle":
                name, how = f"its cycle, `{r['of']}` (reference)", f"{r['name'].split(': ')[1]}, vs the input"
            else:  # a trivial translator runs one way, over the pairs of this direction
                name, how = f"{r['label']} (reference)", direction
            out.append(f"| {name} | {how} | {m['l1']['mean']:.3f} | {m['psnr']['mean']:.2f} | "
                       f"{m['ssim']['mean']:.3f} | {m['fid']['mean']:.1f} |")  # fmt: skip
    return "\n" + "\n".join(out) + "\n"


def readme_sr_table(board: dict) -> str:
    """The README's short super-resolution table: PSNR / SSIM per benchmark and the detail ratio on the unseen
    benchmarks, models, bicubic, the paper."""
    rows = [r for r in board["rows"] if r["protocol"].get("task") == "super-resolution"]
    if not rows:
        return "\n"
    benchmarks = ("Set5", "Set14", "BSD100")
    out = ["| model | " + " | ".join(f"{b} PSNR / SSIM" for b in benchmarks) + " | detail Set5 / Set14 |",
           "|---|---|---|---|---|"]  # fmt: skip
    for r in sorted(rows, key=lambda r: (r["protocol"]["scale"], r["kind"] != "model", r["name"])):
        m = {k: v["mean"] for k, v in r["metrics"].items()}
        seen = {b: "*" if r["protocol"]["benchmarks"][b]["seen_in_training"] else "" for b in benchmarks}
        cells = [f"{m[f'psnr/{b}']:.2f} / {m[f'ssim/{b}']:.3f}{seen[b]}" for b in benchmarks]
        cells.append(f"{m['detail/Set5']:.2f} / {m['detail/Set14']:.2f}")
        name = f"`{r['name']}`" if r["kind"] == "model" else f"{r['name']} (reference)"
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    for name, (psnr, ssim) in SR_PUBLISHED.items():
        cells = [f"{p:.2f} / {s:.3f}" if s is not None else f"{p:.2f} / –" for p, s in zip(psnr, ssim, strict=True)]
        out.append(f"| {name} | " + " | ".join(cells) + " | – |")
    return "\n" + "\n".join(out) + "\n"


def write_cards(board: dict) -> list[str]:
    """Rewrite the card (README.md) of each shipped checkpoint that has a row, so its metrics are these."""
    written = []
    for r in board["rows"]:  # a model with several rows (cyclegan-maps: one a direction) has one card
        if r["kind"] != "model" or not registry.is_pretrained(r["name"]) or r["name"] in written:
            continue
        entry = registry.get_pretrained(r["name"])
        folder = registry.shipped_dir("checkpoints") / (entry.folder or "")
        if entry.folder and folder.is_dir():
            gan = hub.load_folder(folder, sha256=entry.sha256)
            rows = registry.measured(entry.name, hub.file_sha256(folder / hub.WEIGHTS_NAME), rows=board["rows"])
            (folder / hub.CARD_NAME).write_text(cards.model_card(gan, entry.name, entry, measured=rows))
            written.append(entry.name)
    return written


if __name__ == "__main__":
    raise SystemExit(main())
