"""A loopback stand-in for the Hugging Face Hub that serves model repos from local folders.

It answers the requests ``huggingface_hub`` (2.x) makes to download a model repo, as the Hub answers them, so the
real client can be pointed at it with ``HF_ENDPOINT=http://127.0.0.1:<port>``:

- ``GET /api/models/{repo_id}`` and ``GET /api/models/{repo_id}/revision/{revision}``: the repo info
  (``HfApi.model_info``/``repo_info``; ``snapshot_download`` calls it to resolve a branch to a commit);
- ``GET /api/models/{repo_id}/tree/{revision}[/{path}]``: the file listing (``HfApi.list_repo_tree``;
  ``snapshot_download`` calls it for the commit);
- ``HEAD`` and ``GET /{repo_id}/resolve/{revision}/{filename}``: file metadata (``X-Repo-Commit``, ``ETag``,
  ``X-Linked-Etag``, ``X-Linked-Size``, ``Content-Length``) and content, with ``Range`` support;
- ``GET /api/agent-harnesses``: an empty registry (the client fetches it once a day per ``HF_HOME`` to build its
  User-Agent).

Files with an LFS-like suffix (``.safetensors``, ``.png``, ...) are served as LFS files (their ETag is the sha256 of
their content, as on the Hub); the others as git files (their ETag is their git blob sha1). No Xet header is ever
sent, so the client always takes the plain HTTP download path. Errors carry the ``X-Error-Code`` the client maps to
its exceptions: ``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``.

Each repo is a snapshot taken when it is added: one fixed 40-hex commit sha, reachable by that sha and by its branch
names (``main`` by default). Every request served is recorded in :attr:`HubServer.requests`.

    with HubServer() as hub:
        sha = hub.add_repo("owner/name", folder)
        # HF_ENDPOINT=hub.url ...; hub.requests lists what was asked
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".png", ".jpg", ".npz", ".onnx", ".gguf")
_SHA = re.compile(r"^[0-9a-f]{40}$")
_REPO = r"(?P<repo>[^/]+/[^/]+)"
_ROUTES = [
    ("info", re.compile(rf"^/api/models/{_REPO}$")),
    ("info", re.compile(rf"^/api/models/{_REPO}/revision/(?P<rev>[^/]+)$")),
    ("tree", re.compile(rf"^/api/models/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$")),
    ("resolve", re.compile(rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")),
    ("harnesses", re.compile(r"^/api/agent-harnesses$")),
]
_DATE = "2026-01-01T00:00:00.000Z"


@dataclass(frozen=True)
class RepoFile:
    name: str
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def pointer(self) -> bytes:
        """The git-lfs pointer that git stores in place of an LFS file."""
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {len(self.data)}\n".encode()

    @property
    def blob_id(self) -> str:
        """The git blob sha1 of what git stores: the content, or the pointer of an LFS file."""
        stored = self.pointer if self.lfs else self.data
        return hashlib.sha1(b"blob %d\0" % len(stored) + stored).hexdigest()

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.blob_id

    def tree_entry(self) -> dict:
        entry = {"type": "file", "oid": self.blob_id, "size": len(self.data), "path": self.name}
        if self.lfs:
            entry["lfs"] = {"oid": self.sha256, "size": len(self.data), "pointerSize": len(self.pointer)}
        return entry


@dataclass
class Repo:
    repo_id: str
    sha: str
    files: dict[str, RepoFile]
    branches: tuple[str, ...] = ("main",)

    def resolve(self, revision: str) -> str | None:
        return self.sha if revision == self.sha or revision in self.branches else None


@dataclass(frozen=True)
class Request:
    """One request served: method, path (decoded, without the query), query, status and the Range header."""

    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    range: str | None = None


@dataclass
class HubServer:
    """The loopback Hub: ``start()``/``stop()`` (or ``with``), ``add_repo()``, ``url``, ``requests``."""

    repos: dict[str, Repo] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- repos --------------------------------------------------------------------------------------

    def add_repo(
        self, repo_id: str, folder: str | Path, *, sha: str | None = None, branches: tuple[str, ...] = ("main",)
    ) -> str:
        """Serve the files of ``folder`` (recursively, dot-files left out) as ``repo_id``; returns its commit sha.

        Without ``sha`` the commit sha is derived from the repo id and the files, so the same folder gives the
        same sha.
        """
        folder = Path(folder)
        files = {}
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder).as_posix()
            if path.is_file() and not any(part.startswith(".") for part in rel.split("/")):
                files[rel] = RepoFile(rel, path.read_bytes(), rel.endswith(LFS_SUFFIXES))
        if sha is None:
            h = hashlib.sha1(repo_id.encode())
            for f in files.values():
                h.update(f"\0{f.name}\0{f.blob_id}".encode())
            sha = h.hexdigest()
        if not _SHA.match(sha):
            raise ValueError(f"a commit sha is 40 lowercase hex digits, got {sha!r}")
        with self._lock:
            self.repos[repo_id] = Repo(repo_id, sha, files, tuple(branches))
        return sha

    # -- requests -----------------------------------------------------------------------------------

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def served(self) -> list[Request]:
        with self._lock:
            return list(self.requests)

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    # -- lifecycle ----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("the server has not been started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def start(self) -> HubServer:
        """Listen on 127.0.0.1 (a free port the first time, the same port after a ``stop()``)."""
        if self._httpd is not None:
            return self
        server = self

        class Handler(_Handler):
            hub = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        httpd = self._httpd
        self._thread = threading.Thread(
            target=lambda: httpd.serve_forever(poll_interval=0.05), name=f"hub-server-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: from now on a connection to :attr:`url` is refused."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        assert self._thread is not None
        self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.0 (one request per connection): once the server stops, no pooled connection can reach it."""

    hub: HubServer
    server_version = "hub-server/1.0"

    def log_message(self, format: str, *args) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._handle(body=False)

    def do_GET(self) -> None:
        self._handle(body=True)

    def do_POST(self) -> None:
        self._send(405, b"", {"X-Error-Message": "read-only test server"}, body=True)

    def _handle(self, body: bool) -> None:
        split = urlsplit(self.path)
        self._path = unquote(split.path)
        self._query = parse_qs(split.query)
        try:
            for kind, pattern in _ROUTES:
                m = pattern.match(split.path)
                if m:
                    groups = {k: unquote(v) if v is not None else None for k, v in m.groupdict().items()}
                    return getattr(self, f"_{kind}")(body=body, **groups)
            self._send(404, b"Not Found", {}, body=body)
        except Exception as e:  # a bug here must show up as a 500, not as a hang
            self._send(500, f"hub-server error: {e!r}".encode(), {"X-Error-Message": repr(e)}, body=body)

    # -- routes -------------------------------------------------------------------------------------

    def _lookup(self, repo_id: str, rev: str | None, body: bool) -> tuple[Repo, str] | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found", body)
            return None
        sha = repo.resolve(rev or "main")
        if sha is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", body)
            return None
        return repo, sha

    def _info(self, repo: str, body: bool, rev: str | None = None) -> None:
        found = self._lookup(repo, rev, body)
        if found is None:
            return
        repo_, sha = found
        blobs = self._query.get("blobs", ["false"])[0].lower() == "true"
        siblings = []
        for f in repo_.files.values():
            sibling: dict = {"rfilename": f.name}
            if blobs:
                sibling.update(size=len(f.data), blobId=f.blob_id)
                if f.lfs:
                    sibling["lfs"] = {"sha256": f.sha256, "size": len(f.data), "pointerSize": len(f.pointer)}
            siblings.append(sibling)
        info = {
            "_id": sha[:24],
            "id": repo_.repo_id,
            "modelId": repo_.repo_id,
            "author": repo_.repo_id.split("/")[0],
            "sha": sha,
            "lastModified": _DATE,
            "createdAt": _DATE,
            "private": False,
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "usedStorage": sum(len(f.data) for f in repo_.files.values()),
        }
        self._json(info, {"X-Repo-Commit": sha}, body)

    def _tree(self, repo: str, rev: str, body: bool, path: str | None = None) -> None:
        found = self._lookup(repo, rev, body)
        if found is None:
            return
        repo_, sha = found
        prefix = f"{path.strip('/')}/" if path else ""
        recursive = self._query.get("recursive", ["false"])[0].lower() == "true"
        entries, folders = [], set()
        for name, f in repo_.files.items():
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix) :]
            if "/" in rest:
                top = rest.split("/", 1)[0]
                if prefix + top not in folders:
                    folders.add(prefix + top)
                    entries.append({"type": "directory", "oid": hashlib.sha1(top.encode()).hexdigest(), "size": 0,
                                    "path": prefix + top})  # fmt: skip
                if not recursive:
                    continue
            entries.append(f.tree_entry())
        if path and not entries:
            self._error(404, "EntryNotFound", f"{path} does not exist on {rev}", body, commit=sha)
            return
        self._json(entries, {"X-Repo-Commit": sha}, body)

    def _resolve(self, repo: str, rev: str, file: str, body: bool) -> None:
        found = self._lookup(repo, rev, body)
        if found is None:
            return
        repo_, sha = found
        f = repo_.files.get(file)
        if f is None:
            self._error(404, "EntryNotFound", "Entry not found", body, commit=sha)
            return
        headers = {
            "X-Repo-Commit": sha,
            "ETag": f'"{f.etag}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'inline; filename="{file.rsplit("/", 1)[-1]}"',
        }
        if f.lfs:
            headers["X-Linked-Etag"] = f'"{f.sha256}"'
            headers["X-Linked-Size"] = str(len(f.data))
        data, status = f.data, 200
        rng = self.headers.get("Range")
        if rng:
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            size = len(f.data)
            if not m or (not m[1] and not m[2]):
                self._send(416, b"", {**headers, "Content-Range": f"bytes */{size}"}, body=body)
                return
            if m[1]:
                start, end = int(m[1]), min(int(m[2]) if m[2] else size - 1, size - 1)
            else:  # suffix range: the last N bytes
                start, end = max(size - int(m[2]), 0), size - 1
            if start >= size or start > end:
                self._send(416, b"", {**headers, "Content-Range": f"bytes */{size}"}, body=body)
                return
            data, status = f.data[start : end + 1], 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        self._send(status, data, headers, body=body)

    def _harnesses(self, body: bool) -> None:
        # huggingface_hub >= 2.x fetches this registry (to tag its User-Agent) once a day per HF_HOME and caches it
        # there; a 404 would not be cached and every process would ask again.
        self._json({"standardEnvVars": [], "harnesses": {}}, {}, body)

    # -- responses ----------------------------------------------------------------------------------

    def _error(self, status: int, code: str, message: str, body: bool, commit: str | None = None) -> None:
        headers = {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"}
        if commit:
            headers["X-Repo-Commit"] = commit
        self._send(status, json.dumps({"error": message}).encode(), headers, body=body)

    def _json(self, obj, headers: dict[str, str], body: bool) -> None:
        self._send(200, json.dumps(obj).encode(), {**headers, "Content-Type": "application/json"}, body=body)

    def _send(self, status: int, data: bytes, headers: dict[str, str], *, body: bool) -> None:
        path, query = getattr(self, "_path", self.path), getattr(self, "_query", {})
        self.hub._record(Request(self.command, path, query, status, self.headers.get("Range")))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        if body:
            self.wfile.write(data)


if __name__ == "__main__":  # serve folders by hand: python tests/hub_server.py owner/name=folder ...
    import sys
    import time

    with HubServer() as hub:
        for arg in sys.argv[1:]:
            repo_id, folder = arg.split("=", 1)
            print(f"{repo_id} @ {hub.add_repo(repo_id, folder)}")
        print(f"HF_ENDPOINT={hub.url}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
