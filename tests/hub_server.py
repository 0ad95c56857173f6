"""A real Hub-compatible server on loopback for the Hub tests: olah 0.5.4 (a self-hosted Hub mirror) serving local git
mirrors offline, plus the few routes and fixes `huggingface_hub` needs that olah lacks.

olah is configured only through its TOML file; this module writes one (offline, loopback, free port) and runs olah
in a subprocess whose FastAPI app gets a thin adapter before it starts:

- Uploads (olah has none): `POST /api/repos/create` (a `git init` mirror with an initial commit on `main`),
  `POST /api/models/{org}/{name}/preupload/{rev}` (every file "regular": sent inline, no LFS/Xet), and
  `POST /api/models/{org}/{name}/commit/{rev}` (the NDJSON commit payload becomes a git commit in the mirror).
  With these `push_to_hub` runs unmodified.
- `GET /api/models/{org}/{name}` without a revision answers 401 in olah 0.5.4, which breaks
  `DiffusionPipeline.from_pretrained`: the middleware asks olah for `.../revision/main` instead.
- A missing file or an unknown revision answers 401 "repo not found" (or 500) in olah 0.5.4 instead of the Hub's
  404 with `X-Error-Code: EntryNotFound` / `RevisionNotFound`, which breaks `AutoTokenizer`'s probing of optional
  files and hides `RevisionNotFoundError`. The middleware lets olah answer first and rewrites only those failures,
  after checking the mirror.
- An existing file olah fails to serve (500 from its block cache, seen for some small binary files) is served from
  the mirror's git objects with the headers `huggingface_hub` reads (ETag, X-Repo-Commit, Content-Length).
- `whoami` is forwarded upstream by olah: answered locally with a fixed test user; `validate-yaml` (model cards
  pushed by `push_to_hub`) is checked locally by parsing the YAML.

Only 127.0.0.1 is used; the data lives in a temporary directory removed by `stop()`.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import requests

ADAPTER = textwrap.dedent(
    r"""
    import base64, hashlib, json, subprocess, sys
    from pathlib import Path

    CONFIG, MIRROR = sys.argv[1], Path(sys.argv[2]) / "models"
    sys.argv = ["olah-cli", "-c", CONFIG]  # olah reads its configuration only from the TOML file
    from fastapi import Request
    from fastapi.responses import JSONResponse, Response
    from olah import server

    app = server.app

    def git(repo, *args, input=None):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=True,
                              input=input).stdout

    def repo_dir(org, name):
        return MIRROR / org / name

    def resolve(repo, revision):
        try:
            return git(repo, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}").decode().strip()
        except subprocess.CalledProcessError:
            return None

    def not_found(code, message):
        return JSONResponse({"error": message}, status_code=404, headers={"X-Error-Code": code,
                                                                         "X-Error-Message": message})

    async def create_repo(request: Request):
        body = await request.json()
        name, org = body["name"], body.get("organization")
        if org is None and "/" in name:
            org, name = name.split("/", 1)
        repo = repo_dir(org, name)
        url = f"{request.base_url}{org}/{name}"
        if repo.exists():
            return JSONResponse({"error": "You already created this model repo", "url": url}, status_code=409)
        repo.mkdir(parents=True)
        git(repo, "init", "-q", "-b", "main")
        git(repo, "config", "user.email", "hub@localhost")
        git(repo, "config", "user.name", "hub")
        (repo / ".gitattributes").write_text("*.safetensors binary\n")
        git(repo, "add", ".gitattributes")
        git(repo, "commit", "-q", "-m", "initial commit")
        return JSONResponse({"url": url, "name": f"{org}/{name}"})

    async def preupload(org: str, name: str, revision: str, request: Request):
        if not repo_dir(org, name).exists():
            return JSONResponse({"error": "Repository not found"}, status_code=404,
                                headers={"X-Error-Code": "RepoNotFound"})
        files = (await request.json())["files"]
        return JSONResponse({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                       for f in files], "commitOid": resolve(repo_dir(org, name), revision)})

    async def commit(org: str, name: str, revision: str, request: Request):
        repo = repo_dir(org, name)
        if not repo.exists():
            return JSONResponse({"error": "Repository not found"}, status_code=404,
                                headers={"X-Error-Code": "RepoNotFound"})
        summary = "upload"
        if revision != "main":  # the mirror's work tree follows main; commit on the branch, then return to main
            if resolve(repo, revision) is None:
                return JSONResponse({"error": f"Invalid rev id: {revision}"}, status_code=404,
                                    headers={"X-Error-Code": "RevisionNotFound"})
            git(repo, "checkout", "-q", revision)
        for line in (await request.body()).decode().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                summary = value.get("summary") or summary
            elif key == "file":
                target = repo / value["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(base64.b64decode(value["content"]))
            elif key in ("deletedFile", "deletedFolder"):
                git(repo, "rm", "-r", "-q", "--ignore-unmatch", value["path"])
            else:
                return JSONResponse({"error": f"unsupported commit operation {key}"}, status_code=400)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "--allow-empty", "-m", summary)
        oid = resolve(repo, "HEAD")
        if revision != "main":
            git(repo, "checkout", "-q", "main")
        return JSONResponse({"commitUrl": f"{request.base_url}{org}/{name}/commit/{oid}", "commitOid": oid,
                             "pullRequestUrl": None})

    async def create_branch(org: str, name: str, branch: str, request: Request):
        repo = repo_dir(org, name)
        if not repo.exists():
            return JSONResponse({"error": "Repository not found"}, status_code=404,
                                headers={"X-Error-Code": "RepoNotFound"})
        if resolve(repo, branch) is not None:
            return JSONResponse({"error": f"Branch {branch} already exists"}, status_code=409)
        body = await request.body()
        start = (json.loads(body) if body else {}).get("startingPoint") or "main"
        git(repo, "branch", branch, start)
        return JSONResponse({})

    async def validate_yaml(request: Request):
        import yaml

        content = (await request.json()).get("content", "")
        if content.startswith("---"):  # a model card: validate its front matter
            content = content.split("---", 2)[1]
        try:
            yaml.safe_load(content)
        except yaml.YAMLError as err:
            return JSONResponse({"error": f"invalid YAML: {err}"}, status_code=400)
        return JSONResponse({"errors": [], "warnings": []})

    async def whoami(request: Request):
        return JSONResponse({"type": "user", "name": "crocodil-test", "orgs": [], "auth": {}})

    routes = [
        ("/api/repos/create", create_repo, ["POST"]),
        ("/api/models/{org}/{name}/preupload/{revision}", preupload, ["POST"]),
        ("/api/models/{org}/{name}/commit/{revision}", commit, ["POST"]),
        ("/api/models/{org}/{name}/branch/{branch}", create_branch, ["POST"]),
        ("/api/validate-yaml", validate_yaml, ["POST"]),
        ("/api/whoami-v2", whoami, ["GET"]),
    ]
    for path, endpoint, methods in reversed(routes):
        app.add_api_route(path, endpoint, methods=methods)
        app.router.routes.insert(0, app.router.routes.pop())  # ahead of olah's own routes

    @app.middleware("http")
    async def hub_like_errors(request: Request, call_next):
        parts = request.url.path.strip("/").split("/")
        # model_info() without a revision: olah answers 401; ask olah for `main` instead.
        if request.method in ("GET", "HEAD") and len(parts) == 4 and parts[:2] == ["api", "models"]:
            request.scope["path"] = request.scope["path"].rstrip("/") + "/revision/main"
            parts = request.url.path.strip("/").split("/") + ["revision", "main"]
        try:
            response = await call_next(request)
        except Exception:  # olah raises on some missing files (a 500 upstream of this middleware)
            response = Response("Internal Server Error", status_code=500)
        if response.status_code < 400:
            return response
        # olah answers 401 "repo not found" (or 500) for an unknown revision or a missing file of an existing repo;
        # answer as the Hub does, so that RevisionNotFoundError / EntryNotFoundError and optional-file probing work.
        if len(parts) >= 6 and parts[:2] == ["api", "models"] and parts[4] == "revision":
            org, name, revision, path = parts[2], parts[3], parts[5], None
        elif len(parts) >= 5 and parts[2] == "resolve":
            org, name, revision, path = parts[0], parts[1], parts[3], "/".join(parts[4:])
        else:
            return response
        repo = repo_dir(org, name)
        if not repo.exists():
            return response  # olah's 401 + X-Error-Code: RepoNotFound is what the Hub answers too
        sha = resolve(repo, revision)
        if sha is None:
            return not_found("RevisionNotFound", f"Invalid rev id: {revision}")
        if path is None:
            return response
        try:
            content = git(repo, "show", f"{sha}:{path}")
        except subprocess.CalledProcessError:
            return not_found("EntryNotFound", f"{path} does not exist on {revision}")
        # an existing file olah failed to serve (its block cache answers 500 for some small files): serve it from git
        etag = git(repo, "rev-parse", f"{sha}:{path}").decode().strip()
        headers = {"ETag": f'"{etag}"', "X-Repo-Commit": sha, "Content-Length": str(len(content))}
        return Response(content=b"" if request.method == "HEAD" else content, headers=headers,
                        media_type="application/octet-stream")

    server.run_server(server.init())
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HubServer:
    """Start/stop the loopback Hub; seed repositories."""

    def __init__(self, port: int | None = None):
        self.root = Path(tempfile.mkdtemp(prefix="crocodil-hub-"))
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.mirrors = self.root / "mirrors"
        (self.mirrors / "models").mkdir(parents=True)
        self.process = None

    def start(self, timeout: float = 60.0) -> "HubServer":
        config = self.root / "olah.toml"
        config.write_text(
            textwrap.dedent(f"""
            [basic]
            host = "127.0.0.1"
            port = {self.port}
            repos-path = "{self.root / "repos"}"
            mirrors-path = ["{self.mirrors}"]
            mirror-scheme = "http"
            mirror-netloc = "127.0.0.1:{self.port}"
            mirror-lfs-netloc = "127.0.0.1:{self.port}"

            [accessibility]
            offline = true
            """)
        )
        script = self.root / "adapter.py"
        script.write_text(ADAPTER)
        log = open(self.root / "server.log", "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        self.process = subprocess.Popen(
            [sys.executable, str(script), str(config), str(self.mirrors)],
            cwd=self.root,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hub server exited: {(self.root / 'server.log').read_text()[-2000:]}")
            try:
                if requests.get(f"{self.endpoint}/api/whoami-v2", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("hub server did not start in time")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def seed(self, repo_id: str, files: dict[str, bytes | str]) -> str:
        """Create `models/<org>/<name>` as a git mirror holding `files` on `main`; returns the commit sha."""
        repo = self.mirrors / "models" / repo_id
        repo.mkdir(parents=True, exist_ok=True)
        if not (repo / ".git").exists():
            subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
        for path, content in files.items():
            target = repo / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content.encode() if isinstance(content, str) else content)
        git = ["git", "-C", str(repo), "-c", "user.email=hub@localhost", "-c", "user.name=hub"]
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "seed"], check=True)
        return subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()


__all__ = ["HubServer", "json"]
