"""The Hub paths of ganzoo.hub with the real huggingface_hub client against a loopback Hub (tests/hub_server.py).

huggingface_hub reads HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE when it is imported, so every download runs in a
child Python process with its own environment; the child registers temporary pretrained entries, calls
``ganzoo.load`` and writes what it got (samples, or the exception) to a JSON file and ``.pt`` files.
Only ``push_to_hub`` is tested at the HfApi boundary, with recorders in place of ``create_repo``/``upload_folder``.
"""

from __future__ import annotations

import hashlib
import http.client
import inspect
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import CommitInfo, HfApi
from huggingface_hub.utils import filter_repo_objects

import ganzoo
from ganzoo import registry
from ganzoo.hub import HUB_FILES, CheckpointError, HubError, download_url, file_sha256
from tests.hub_server import HubServer

REPO = "ganzoo-test/dcgan-tiny"
NAME = "dcgan-tiny-hubtest"  # a registry entry pinned to the served commit
MODEL_FILES = {"config.json", "model.safetensors", "README.md", "samples.png"}
DOWNLOADED = {"config.json", "model.safetensors", "README.md"}  # what ganzoo.hub.download asks for

# The child: registers entries, loads targets, records samples or the exception. With "no_sleep", the client's
# retry back-off (huggingface_hub.utils._http's time.sleep) returns at once and the waits it asked for are recorded:
# the retries still happen, against the real socket, they just do not take 23 s.
CHILD = r"""
import json, sys, time
plan = json.loads(sys.argv[1])
slept = []
if plan.get("no_sleep"):
    import huggingface_hub.utils._http as http

    class _Time:
        def __getattr__(self, name):
            return getattr(time, name)

        def sleep(self, seconds):
            slept.append(seconds)

    http.time = _Time()
import torch
import ganzoo
from huggingface_hub import constants
from ganzoo import registry

for entry in plan["register"]:
    registry.register_pretrained(registry.Pretrained(**entry))
results = {"_endpoint": constants.ENDPOINT, "_offline": constants.HF_HUB_OFFLINE}
for key, target, revision in plan["loads"]:
    try:
        gan = ganzoo.load(target, revision=revision)
    except Exception as e:
        results[key] = {"ok": False, "type": f"{type(e).__module__}.{type(e).__qualname__}", "message": str(e),
                        "cause": type(e.__cause__).__name__ if e.__cause__ else None}
    else:
        torch.save(gan.sample(4, seed=0), f"{plan['out']}/{key}.pt")
        results[key] = {"ok": True, "training": gan.training, "variant": gan.variant,
                        "images_seen": gan.images_seen}
results["_slept"] = slept
with open(f"{plan['out']}/results.json", "w") as f:
    json.dump(results, f)
"""


@dataclass
class Saved:
    gan: ganzoo.gan.GAN
    folder: Path
    samples: torch.Tensor
    sha256: str


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Saved:
    """A tiny dcgan whose every tensor differs from its fresh init (EMA != generator, BN stats moved), saved."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        gan = ganzoo.create("dcgan", **registry.get_variant("dcgan").tiny)
        with torch.no_grad():
            for t in gan.state_dict().values():
                if t.is_floating_point():
                    t.add_(torch.rand_like(t) * 0.1)  # positive: running_var stays valid
    gan.images_seen, gan.batches_seen = 1234, 56
    folder = ganzoo.save_pretrained(gan, tmp_path_factory.mktemp("saved") / "dcgan-tiny", num_samples=4)
    return Saved(gan, folder, gan.sample(4, seed=0), file_sha256(folder / "model.safetensors"))


@pytest.fixture(scope="module")
def hub(saved):
    with HubServer() as server:
        server.add_repo(REPO, saved.folder)
        yield server


@pytest.fixture(scope="module")
def sha(hub) -> str:
    """The commit the loopback Hub serves REPO at."""
    return hub.repos[REPO].sha


def entries(sha: str, digest: str) -> list[dict]:
    common = dict(variant="dcgan", dataset="none", license="apache-2.0")
    return [
        dict(name=NAME, hub_repo=REPO, revision=sha, sha256=digest, **common),
        dict(name=f"{NAME}-badsha", hub_repo=REPO, revision=sha, sha256="0" * 64, **common),
        dict(name=f"{NAME}-norepo", hub_repo="ganzoo-test/no-such-model", revision=sha, **common),
    ]


def run_child(tmp: Path, *, endpoint: str, hf_home: Path, loads, sha: str, digest: str, offline=False, no_sleep=False):
    """Run the loads in a fresh interpreter; returns (results, {key: samples})."""
    out = tmp / "out"
    out.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE_"))}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(hf_home), HF_HUB_DISABLE_PROGRESS_BARS="1",
               HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_IMPLICIT_TOKEN="1")  # fmt: skip
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    plan = {"register": entries(sha, digest), "loads": loads, "out": str(out), "no_sleep": no_sleep}
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(plan)], env=env, cwd=tmp,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads((out / "results.json").read_text())
    assert results.pop("_endpoint") == endpoint  # the child's client really talks to `endpoint`
    assert results.pop("_offline") is offline
    samples = {p.stem: torch.load(p) for p in out.glob("*.pt")}
    return results, samples


def assert_loaded(results: dict, samples: dict, key: str, saved: Saved) -> None:
    assert results[key]["ok"], results[key]
    assert results[key]["training"] is False  # eval mode
    assert results[key]["images_seen"] == 1234
    assert torch.equal(samples[key], saved.samples), f"{key}: samples differ from the saved model's"


def closed_port() -> tuple[socket.socket, int]:
    """A port bound but never listening: connections are refused, and nothing else can take it meanwhile."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, sock.getsockname()[1]


def resolve_paths(requests, method: str) -> list[str]:
    return sorted(r.path.rsplit("/", 1)[-1] for r in requests if r.method == method and "/resolve/" in r.path)


# --------------------------------------------------------------------------------------------------
# Local folder


def test_save_load_round_trip(saved):
    folder = saved.folder
    assert {p.name for p in folder.iterdir()} == MODEL_FILES  # no training_config.yaml: not trained by `ganzoo fit`
    card = (folder / "README.md").read_text()
    front = card.split("---\n")[1]
    assert card.startswith("---\n") and "library_name: ganzoo\n" in front
    assert (folder / "samples.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    config = json.loads((folder / "config.json").read_text())
    assert config["variant"] == "dcgan" and config["hparams"]["latent_dim"] == 8

    gan = ganzoo.load(folder)
    assert type(gan) is type(saved.gan) and not gan.training
    assert all(not m.training for m in gan.modules())
    expected = saved.gan.state_dict()
    assert gan.state_dict().keys() == expected.keys()
    assert all(torch.equal(v, expected[k]) for k, v in gan.state_dict().items())
    assert (gan.images_seen, gan.batches_seen) == (1234, 56)
    assert torch.equal(gan.sample(4, seed=0), saved.samples)
    assert not torch.equal(gan.sample(4, seed=1), saved.samples)  # the comparison can fail


# --------------------------------------------------------------------------------------------------
# Download, cache, offline


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hf_home")


@pytest.fixture(scope="module")
def first_download(hub, saved, hf_home, tmp_path_factory, sha):
    """The first loads, into an empty cache: by registered name, by repo id, and a few that must fail."""
    hub.clear()
    loads = [
        ("name", NAME, None),
        ("repo", REPO, None),
        ("badsha", f"{NAME}-badsha", None),
        ("unknown_repo", "ganzoo-test/no-such-model", None),
        ("unknown_entry_repo", f"{NAME}-norepo", None),
        ("unknown_branch", REPO, "no-such-branch"),
        ("unknown_commit", REPO, "f" * 40),
    ]
    results, samples = run_child(tmp_path_factory.mktemp("first"), endpoint=hub.url, hf_home=hf_home, loads=loads,
                                 sha=sha, digest=saved.sha256)  # fmt: skip
    return results, samples, hub.served(), saved.sha256


def test_download_by_name_and_by_repo_id(first_download, saved, hub, hf_home, sha):
    results, samples, requests, _ = first_download
    assert_loaded(results, samples, "name", saved)
    assert_loaded(results, samples, "repo", saved)
    # The pinned entry asks for the commit's file list, then each of the three files once; samples.png stays on
    # the Hub. The repo id resolves `main` to the commit and finds everything in the cache.
    assert f"/api/models/{REPO}/tree/{sha}" in [r.path for r in requests]
    assert f"/api/models/{REPO}/revision/main" in [r.path for r in requests]
    assert resolve_paths(requests, "GET") == sorted(DOWNLOADED)
    assert set(resolve_paths(requests, "HEAD")) == DOWNLOADED
    assert all(f"/resolve/{sha}/" in r.path for r in requests if "/resolve/" in r.path)
    assert all(r.status == 200 for r in requests if "/resolve/" in r.path)
    snapshot = hf_home / "hub" / f"models--{REPO.replace('/', '--')}" / "snapshots" / sha
    assert {p.name for p in snapshot.iterdir()} == DOWNLOADED
    assert file_sha256(snapshot / "model.safetensors") == saved.sha256


def test_download_errors(first_download, hub):
    results = first_download[0]
    bad = results["badsha"]
    assert not bad["ok"] and bad["type"] == "ganzoo.hub.CheckpointError"
    assert f"has sha256 {first_download[3]}, not the registered {'0' * 64}" in bad["message"]
    missing = "ganzoo-test/no-such-model"
    for key, target in [("unknown_repo", missing), ("unknown_entry_repo", missing),
                        ("unknown_branch", REPO), ("unknown_commit", REPO)]:  # fmt: skip
        r = results[key]
        assert not r["ok"] and r["type"] == "ganzoo.hub.HubError", (key, r)
        assert f"{hub.url}/{target}" in r["message"] and "not found on the Hub" in r["message"], (key, r)
    assert "RepositoryNotFoundError" in results["unknown_repo"]["message"]
    assert "RepositoryNotFoundError" in results["unknown_entry_repo"]["message"]
    assert "at revision no-such-branch" in results["unknown_branch"]["message"]
    assert "RevisionNotFoundError" in results["unknown_branch"]["message"]
    assert "RevisionNotFoundError" in results["unknown_commit"]["message"]


def test_pinned_revision_reloads_from_cache_without_requests(first_download, hub, saved, hf_home, tmp_path, sha):
    assert hub.running
    hub.clear()
    results, samples = run_child(tmp_path, endpoint=hub.url, hf_home=hf_home, loads=[("name", NAME, None)],
                                 sha=sha, digest=saved.sha256)  # fmt: skip
    assert_loaded(results, samples, "name", saved)
    assert hub.served() == []  # a pinned commit in the cache needs no network at all


@pytest.fixture(scope="module")
def offline_run(first_download, hub, saved, hf_home, tmp_path_factory, sha):
    hub.clear()
    loads = [("name", NAME, None), ("repo", REPO, None), ("uncached", "ganzoo-test/not-cached", None)]
    results, samples = run_child(tmp_path_factory.mktemp("offline"), endpoint=hub.url, hf_home=hf_home, loads=loads,
                                 sha=sha, digest=saved.sha256, offline=True)  # fmt: skip
    return results, samples, hub.served()


def test_offline_mode_loads_from_cache(offline_run, saved, hub):
    results, samples, requests = offline_run
    assert_loaded(results, samples, "name", saved)
    assert_loaded(results, samples, "repo", saved)
    uncached = results["uncached"]
    assert not uncached["ok"] and uncached["type"] == "ganzoo.hub.HubError"
    assert f"{hub.url}/ganzoo-test/not-cached" in uncached["message"]
    assert requests == []


def test_cache_works_with_the_server_stopped(first_download, hub, saved, hf_home, tmp_path, sha):
    hub.clear()
    hub.stop()
    try:
        with closing(socket.socket()) as s, pytest.raises(ConnectionRefusedError):
            s.connect(("127.0.0.1", hub.port))
        results, samples = run_child(tmp_path, endpoint=hub.url, hf_home=hf_home,
                                     loads=[("name", NAME, None), ("repo", REPO, None)],
                                     sha=sha, digest=saved.sha256)  # fmt: skip
    finally:
        hub.start()  # same port: the other tests keep their server
    assert_loaded(results, samples, "name", saved)
    assert_loaded(results, samples, "repo", saved)  # `main` resolved from refs/main in the cache
    assert hub.served() == []


@pytest.fixture(scope="module")
def no_server_run(saved, tmp_path_factory, sha):
    sock, port = closed_port()
    with closing(sock):
        tmp = tmp_path_factory.mktemp("noserver")
        results, samples = run_child(tmp, endpoint=f"http://127.0.0.1:{port}", hf_home=tmp / "hf_home",
                                     loads=[("name", NAME, None), ("repo", REPO, None)], sha=sha,
                                     digest=saved.sha256, no_sleep=True)  # fmt: skip
    return results, samples, port


def test_no_server_and_empty_cache_raise_hub_error_naming_the_url(no_server_run, sha):
    results, samples, port = no_server_run
    assert samples == {}
    for key, where in [("name", f"http://127.0.0.1:{port}/{REPO} at revision {sha}"),
                       ("repo", f"http://127.0.0.1:{port}/{REPO}")]:  # fmt: skip
        r = results[key]
        assert not r["ok"] and r["type"] == "ganzoo.hub.HubError", r
        assert where in r["message"], r


def test_unreachable_hub_is_not_reported_as_not_found(no_server_run, offline_run):
    results, _, port = no_server_run
    unreachable = [results["name"]["message"], results["repo"]["message"]]
    offline = offline_run[0]["uncached"]["message"]
    for message in [*unreachable, offline]:
        assert "not found on the Hub" not in message, message
        assert message.startswith("could not download"), message
    # Found unreachable by one probe, not after huggingface_hub's retries with back-off.
    assert all(f"Cause: cannot connect to http://127.0.0.1:{port}" in m for m in unreachable), unreachable
    assert results["_slept"] == [], results["_slept"]
    assert "HF_HUB_OFFLINE is set" in offline


# --------------------------------------------------------------------------------------------------
# push_to_hub, at the HfApi boundary


@pytest.fixture
def fake_hfapi(monkeypatch):
    """Record HfApi.create_repo/upload_folder calls (checked against the real signatures); upload_folder lists
    the files it would upload, as filtered by its allow/ignore patterns, while the folder still exists."""
    calls = []
    real = {name: inspect.signature(getattr(HfApi, name)) for name in ("create_repo", "upload_folder")}

    def create_repo(self, *args, **kwargs):
        bound = real["create_repo"].bind(self, *args, **kwargs)
        calls.append(("create_repo", dict(bound.arguments), self.token))
        return f"https://huggingface.co/{bound.arguments['repo_id']}"

    def upload_folder(self, *args, **kwargs):
        bound = real["upload_folder"].bind(self, *args, **kwargs)
        a = dict(bound.arguments)
        folder = Path(a["folder_path"])
        files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
        a["uploaded"] = set(filter_repo_objects(files, allow_patterns=a.get("allow_patterns"),
                                                ignore_patterns=a.get("ignore_patterns")))  # fmt: skip
        a["loaded"] = ganzoo.load(folder) if "config.json" in a["uploaded"] else None
        a["texts"] = {f: (folder / f).read_text() for f in a["uploaded"] if f.endswith((".md", ".py", ".txt"))}
        calls.append(("upload_folder", a, self.token))
        return CommitInfo(
            commit_url=f"https://huggingface.co/{a['repo_id']}/commit/{'a' * 40}",
            commit_message=a.get("commit_message") or "",
            commit_description="",
            oid="a" * 40,
        )

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls


def test_push_folder(fake_hfapi, saved, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(saved.folder, folder)
    (folder / "training_config.yaml").write_text("model: {}\n")  # the recipe goes up with the model
    for junk in ["notes.txt", "last.ckpt", ".DS_Store"]:  # not model files: they stay home
        (folder / junk).write_text("junk")
    url = ganzoo.push_to_hub(folder, "someone/dcgan-tiny", private=True, token="hf_test", commit_message="v1")
    assert url == f"https://huggingface.co/someone/dcgan-tiny/commit/{'a' * 40}"
    assert [c[0] for c in fake_hfapi] == ["create_repo", "upload_folder"]  # one commit
    (_, create, token1), (_, upload, token2) = fake_hfapi
    assert create["repo_id"] == "someone/dcgan-tiny" and create["exist_ok"] is True
    assert create["private"] is True and create.get("repo_type", "model") in ("model", None)
    assert token1 == token2 == "hf_test"
    assert upload["repo_id"] == "someone/dcgan-tiny" and upload.get("repo_type") in ("model", None)
    assert upload["commit_message"] == "v1"
    assert Path(upload["folder_path"]) == folder
    assert upload["uploaded"] == MODEL_FILES | {"training_config.yaml"}
    assert set(upload["allow_patterns"]) == set(HUB_FILES)


def test_push_model_uploads_a_loadable_folder(fake_hfapi, saved):
    url = ganzoo.push_to_hub(saved.gan, "someone/dcgan-tiny", token="hf_test")
    assert url.endswith(f"/commit/{'a' * 40}")
    assert [c[0] for c in fake_hfapi] == ["create_repo", "upload_folder"]
    create, upload = fake_hfapi[0][1], fake_hfapi[1][1]
    assert create["repo_id"] == "someone/dcgan-tiny" and create["exist_ok"] is True and not create["private"]
    assert upload["uploaded"] == MODEL_FILES
    assert Path(upload["folder_path"]).name == "dcgan-tiny"
    assert not Path(upload["folder_path"]).exists()  # the temporary folder is gone after the push
    assert torch.equal(upload["loaded"].sample(4, seed=0), saved.samples)


def test_push_with_space_uploads_the_model_then_a_gradio_space_that_serves_it(fake_hfapi, saved):
    from huggingface_hub import ModelCard, SpaceCard

    ganzoo.push_to_hub(saved.folder, "someone/dcgan-tiny", token="hf_test", space="someone/dcgan-tiny-demo")
    assert [(c[0], c[1]["repo_id"]) for c in fake_hfapi] == [
        ("create_repo", "someone/dcgan-tiny"), ("upload_folder", "someone/dcgan-tiny"),
        ("create_repo", "someone/dcgan-tiny-demo"), ("upload_folder", "someone/dcgan-tiny-demo"),
    ]  # fmt: skip
    (_, model, _), (_, create, _), (_, upload, token) = fake_hfapi[1:]
    assert model["uploaded"] == MODEL_FILES and torch.equal(model["loaded"].sample(4, seed=0), saved.samples)
    # The model card links the Space, exactly as ganzoo.cards writes it, and is otherwise the saved card.
    expected = ModelCard((saved.folder / "README.md").read_text()).text.replace(
        "\n## Training\n", "\nTry it in the browser: [Space](https://huggingface.co/spaces/someone/dcgan-tiny-demo)"
        "\n\n## Training\n")  # fmt: skip
    assert ModelCard(model["texts"]["README.md"]).text == expected
    assert "Try it in the browser" not in (saved.folder / "README.md").read_text()  # the local folder is untouched
    assert create["repo_type"] == "space" and create["space_sdk"] == "gradio" and token == "hf_test"
    assert upload["repo_type"] == "space" and upload["uploaded"] == {"app.py", "requirements.txt", "README.md"}
    card = SpaceCard(upload["texts"]["README.md"]).data
    assert (card.sdk, card.app_file, card.models) == ("gradio", "app.py", ["someone/dcgan-tiny"])
    assert card.sdk_version == version("gradio")
    assert upload["texts"]["requirements.txt"] == f"ganzoo[demo]=={ganzoo.__version__}\n"
    assert 'launch("someone/dcgan-tiny")' in upload["texts"]["app.py"]


def test_a_cards_space_link_is_where_push_puts_it(saved):
    from ganzoo import cards

    gan, space = ganzoo.load(saved.folder), "someone/x"
    linked = ganzoo.hub._with_space_link(saved.folder, saved.folder.parent / "linked", space) / "README.md"
    assert linked.read_text() == cards.model_card(gan, "dcgan-tiny", space=space)
    assert (saved.folder / "README.md").read_text() == cards.model_card(gan, "dcgan-tiny")


@pytest.mark.slow
def test_the_written_space_runs_locally_and_serves_the_hub_model(hub, saved, tmp_path):
    """``python app.py`` in the written Space, against the loopback Hub: the page's generate gives the pushed
    model's own sample of seed 0."""
    from gradio_client import Client
    from PIL import Image

    space = ganzoo.hub.write_space(tmp_path / "space", REPO)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE_", "GRADIO_"))}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"), HF_HUB_DISABLE_TELEMETRY="1",
               GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False")  # fmt: skip
    log = tmp_path / "app.log"
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=space, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(360):
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                with closing(http.client.HTTPConnection("127.0.0.1", port, timeout=2)) as c:
                    c.request("GET", "/")
                    if c.getresponse().status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            raise AssertionError(f"the Space did not answer:\n{log.read_text()[-3000:]}")
        image = Client(url, verbose=False).predict(0, 1, 1.0, "every class in turn", api_name="/generate")
        expected = ganzoo.gan.to_pil(saved.gan.sample(1, seed=0))[0]
        assert np.array_equal(np.asarray(Image.open(image)), np.asarray(expected))
    finally:
        proc.terminate()
        proc.wait(30)
    assert any(r.path.endswith("/README.md") and r.status == 200 for r in hub.requests), "the card comes from the Hub"


@pytest.mark.parametrize("damage", ["truncate", "missing_config"])
def test_push_damaged_folder_is_refused_before_any_hub_call(fake_hfapi, saved, tmp_path, damage):
    folder = tmp_path / "model"
    shutil.copytree(saved.folder, folder)
    if damage == "truncate":
        weights = folder / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    else:
        (folder / "config.json").unlink()
    with pytest.raises(CheckpointError):
        ganzoo.push_to_hub(folder, "someone/dcgan-tiny", token="hf_test")
    assert fake_hfapi == []


# --------------------------------------------------------------------------------------------------
# The loopback Hub itself: the headers and errors the client relies on


def test_hub_server_protocol(hub, saved, sha):
    def fetch(method: str, path: str, **headers) -> tuple[int, dict, bytes]:
        with closing(http.client.HTTPConnection("127.0.0.1", hub.port, timeout=10)) as conn:
            conn.request(method, path, headers=headers)
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()

    weights = (saved.folder / "model.safetensors").read_bytes()
    status, h, body = fetch("HEAD", f"/{REPO}/resolve/main/model.safetensors")
    assert status == 200 and body == b"" and h["x-repo-commit"] == sha
    assert h["etag"] == h["x-linked-etag"] == f'"{saved.sha256}"' and h["x-linked-size"] == str(len(weights))
    assert h["content-length"] == str(len(weights)) and not any(k.startswith("x-xet") for k in h)
    status, h, body = fetch("GET", f"/{REPO}/resolve/{sha}/model.safetensors", Range="bytes=10-19")
    assert status == 206 and body == weights[10:20] and h["content-range"] == f"bytes 10-19/{len(weights)}"
    status, h, _ = fetch("HEAD", f"/{REPO}/resolve/{sha}/config.json")  # a git file: ETag is its blob sha1
    config = (saved.folder / "config.json").read_bytes()
    assert h["etag"] == '"{}"'.format(hashlib.sha1(b"blob %d\0" % len(config) + config).hexdigest())
    assert "x-linked-etag" not in h
    info = json.loads(fetch("GET", f"/api/models/{REPO}/revision/main")[2])
    assert info["sha"] == sha and {s["rfilename"] for s in info["siblings"]} == MODEL_FILES
    for path, code in [(f"/api/models/{REPO}x/revision/main", "RepoNotFound"),
                       (f"/api/models/{REPO}/revision/dev", "RevisionNotFound"),
                       (f"/{REPO}/resolve/{sha}/nope.bin", "EntryNotFound")]:  # fmt: skip
        status, h, _ = fetch("GET", path)
        assert (status, h["x-error-code"]) == (404, code), path


def test_download_url_verifies_keeps_and_reports(tmp_path):
    """Upstream files (NVIDIA's, the Inception network) come from plain URLs: fetched once, verified, atomic."""
    import functools
    import hashlib
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    served = tmp_path / "served"
    served.mkdir()
    payload = bytes(range(256)) * 4000
    (served / "weights.pt").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/weights.pt"
    # A torch.hub-style name carries the head of its sha256 (pytorch_GAN_zoo's "celebaHQ_s6_i80000-6196db68.pth").
    (served / f"named-{digest[:8]}.pth").write_bytes(payload)
    (served / "named-0000000a.pth").write_bytes(payload)
    (served / "snapshot-20240101.pth").write_bytes(payload)  # digits only: a date, not a hash
    try:
        named = url.replace("weights.pt", f"named-{digest[:8]}.pth")
        assert download_url(named, tmp_path / "named.pth", progress=False).read_bytes() == payload
        with pytest.raises(CheckpointError, match="not starting with the 0000000a its name carries"):
            download_url(url.replace("weights.pt", "named-0000000a.pth"), tmp_path / "bad.pth", progress=False)
        assert not (tmp_path / "bad.pth").exists()
        # A copy put in place by hand is held to the same check: a wrong one is fetched again, or named offline.
        (tmp_path / "named.pth").write_bytes(b"not the weights")
        assert download_url(named, tmp_path / "named.pth", progress=False).read_bytes() == payload
        (tmp_path / "gone.pth").write_bytes(b"not the weights")
        with pytest.raises(HubError, match=r"gone.pth is damaged or another file: its sha256 .* its name carries"):
            download_url(named.replace("named-", "gone-"), tmp_path / "gone.pth", progress=False)
        dated = url.replace("weights.pt", "snapshot-20240101.pth")
        assert download_url(dated, tmp_path / "dated.pth", progress=False).read_bytes() == payload
        target = tmp_path / "cache" / "weights.pt"
        with pytest.raises(CheckpointError, match="not the pinned"):
            download_url(url, target, sha256="0" * 64, progress=False)
        assert not target.exists() and not list(target.parent.iterdir())  # nothing half-written is kept
        assert download_url(url, target, sha256=digest, progress=False).read_bytes() == payload
        with pytest.raises(HubError, match="weights-missing.pt"):
            download_url(url.replace("weights", "weights-missing"), tmp_path / "x.pt", progress=False)
    finally:
        server.shutdown()
        server.server_close()
    # Served no more: the kept copy is used; a damaged copy is fetched again, which now fails and says where to.
    assert download_url(url, target, sha256=digest, progress=False).read_bytes() == payload
    target.write_bytes(payload[:100])
    with pytest.raises(HubError, match=f"could not download {url}.*put it at {target}"):
        download_url(url, target, sha256=digest, progress=False)


def test_a_model_with_a_fresh_discriminator_saves_and_loads_only_what_it_holds(tmp_path):
    """A generator-only release (NVIDIA's FFHQ without D, say): the folder holds G and its EMA, says so, loads them
    strictly, builds D fresh and marks it untrained; fitting it is refused unless asked for."""
    import lightning as L

    from ganzoo.callbacks import StopAt, TrainingOptions
    from ganzoo.data import Synthetic

    gan = ganzoo.create("dcgan", **registry.get_variant("dcgan").tiny)
    gan.untrained_parts = {"discriminator"}
    folder = ganzoo.save_pretrained(gan, tmp_path / "g-only", name="g-only", num_samples=4)
    config = json.loads((folder / "config.json").read_text())
    assert config["parts"] == ["generator", "generator_ema"]
    from safetensors.torch import load_file

    assert not any(k.startswith("discriminator.") for k in load_file(folder / "model.safetensors"))
    card = (folder / "README.md").read_text()
    assert "| not trained | discriminator: not in the released weights" in card
    assert ganzoo.hub.info(str(folder))["untrained_parts"] == {
        "discriminator": "not in this folder: built fresh (random) when loaded"
    }

    loaded = ganzoo.load(folder)
    assert loaded.untrained_parts == {"discriminator"}
    for k, v in gan.state_dict().items():
        if k.startswith("generator"):
            assert torch.equal(loaded.state_dict()[k], v), k
    # Saving the loaded model again still leaves the random discriminator out.
    again = ganzoo.save_pretrained(loaded, tmp_path / "again", num_samples=4)
    assert json.loads((again / "config.json").read_text())["parts"] == ["generator", "generator_ema"]

    def fit(model, callbacks):
        trainer = L.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks,
                            default_root_dir=tmp_path)  # fmt: skip
        trainer.fit(model.train(), Synthetic(num_images=16, image_size=8, batch_size=8))

    with pytest.raises(RuntimeError, match=r"discriminator was never trained.*train_fresh_parts=True"):
        fit(loaded, [StopAt(batches=1)])
    fit(loaded, [StopAt(batches=1), TrainingOptions(train_fresh_parts=True)])
    assert loaded.untrained_parts == set() and loaded.batches_seen == 1  # trained now: saved as a part again
    assert (
        "discriminator"
        in json.loads((ganzoo.save_pretrained(loaded, tmp_path / "d") / "config.json").read_text())["parts"]
    )


def test_a_folder_whose_weights_lack_a_listed_part_is_refused(saved, tmp_path):
    from safetensors.torch import load_file, save_file

    damaged = tmp_path / "damaged"
    shutil.copytree(saved.folder, damaged)
    state = {k: v for k, v in load_file(damaged / "model.safetensors").items() if not k.startswith("discriminator.")}
    save_file(state, damaged / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"its config.json records"):
        ganzoo.load(damaged)
    with pytest.raises(CheckpointError, match=r"missing \(\d+\): discriminator\."):  # past the digest, the keys
        ganzoo.load(damaged, verify=False)


def test_a_modified_weights_file_fails_against_the_sha256_its_config_records(saved, tmp_path):
    from safetensors.torch import load_file, save_file

    config = json.loads((saved.folder / "config.json").read_text())
    assert config["weights_sha256"] == file_sha256(saved.folder / "model.safetensors")
    tampered = tmp_path / "tampered"
    shutil.copytree(saved.folder, tampered)
    state = load_file(tampered / "model.safetensors")
    state["generator_ema.net.0.weight"][0, 0, 0, 0] += 1.0  # still a valid file, one number changed
    save_file(state, tampered / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=r"not the [0-9a-f]{64} its config.json records.*verify=False"):
        ganzoo.load(tampered)
    loaded = ganzoo.load(tampered, verify=False)  # asked for: very large models may skip the hash
    assert (
        loaded.state_dict()["generator_ema.net.0.weight"][0, 0, 0, 0]
        != saved.gan.generator_ema.net[0].weight[0, 0, 0, 0]
    )


def test_export_never_writes_into_a_folder_that_holds_something_else(saved, tmp_path, capsys):
    import lightning as L

    from ganzoo import cli
    from ganzoo.callbacks import GANCheckpoint, StopAt
    from ganzoo.data import Synthetic

    gan = ganzoo.create("dcgan", **registry.get_variant("dcgan").tiny)
    ckpt = GANCheckpoint(dirpath=tmp_path / "ckpt")
    L.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
              callbacks=[StopAt(batches=1), ckpt], default_root_dir=tmp_path).fit(
        gan, Synthetic(num_images=16, image_size=8, batch_size=8))  # fmt: skip
    last = str(tmp_path / "ckpt" / "last.ckpt")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.tex").write_text("years of work")
    assert cli.main(["export", last, str(tmp_path / "notes")]) == 1
    assert "is not an empty folder or a ganzoo model" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "notes").iterdir()) == ["thesis.tex"]
    assert cli.main(["export", last, str(tmp_path / "model")]) == 0
    assert cli.main(["export", last, str(tmp_path / "model")]) == 1
    assert "add --overwrite" in capsys.readouterr().err
    assert cli.main(["export", last, str(tmp_path / "model"), "--overwrite"]) == 0
    (tmp_path / "empty").mkdir()
    assert cli.main(["export", last, str(tmp_path / "empty")]) == 0
