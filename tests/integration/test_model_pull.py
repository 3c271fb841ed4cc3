"""`edge-agent model pull` against a GGUF served from this machine: a URL with its
SHA-256, a Hugging Face reference through a Hub-shaped server (redirect, LFS etag), a
download cut off and resumed, a wrong checksum, refused references."""

from __future__ import annotations

import hashlib
import http.server
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import agent_env

pytestmark = pytest.mark.model


@dataclass
class Served:
    path: Path
    sha256: str
    cut_after: int | None = None  # the next GET stops after this many bytes
    ranges: list[str] = field(default_factory=list)  # Range headers received
    port: int = 0

    def url(self, p: str) -> str:
        return f"http://127.0.0.1:{self.port}{p}"


def _handler(s: Served) -> type[http.server.BaseHTTPRequestHandler]:
    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.startswith("/acme/tiny/resolve/main/"):
                # the Hub: a redirect to its storage, the LFS object id on the redirect
                self.send_response(302)
                self.send_header("Location", "/storage/blob")
                self.send_header("X-Linked-Etag", f'"{s.sha256}"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path not in ("/files/model.gguf", "/storage/blob"):
                self.send_error(404)
                return
            data = s.path.read_bytes()
            start = 0
            rng = self.headers.get("Range")
            if rng:
                s.ranges.append(rng)
                start = int(rng.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if s.cut_after is not None:
                self.wfile.write(body[: s.cut_after])
                s.cut_after = None
                self.wfile.flush()
                self.connection.shutdown(2)  # the connection drops mid-file
                return
            self.wfile.write(body)

    return H


@pytest.fixture(scope="module")
def served(model_path: Path) -> Iterator[Served]:
    s = Served(model_path, hashlib.sha256(model_path.read_bytes()).hexdigest())
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(s))
    s.port = srv.server_address[1]
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield s
    srv.shutdown()
    srv.server_close()


def cli(data: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_agent.cli.main", "model", *args],
        env={**agent_env(data), **(env or {})}, capture_output=True, text=True, timeout=300, check=False,
    )


def test_pull_a_url_with_its_checksum(tmp_path: Path, served: Served) -> None:
    data = tmp_path / "data"
    r = cli(data, "pull", served.url("/files/model.gguf"), "--sha256", served.sha256.upper(), "--name", "mirror")
    assert r.returncode == 0, r.stderr
    assert "SHA-256 verified" in r.stdout and "100%" in r.stderr  # the progress reached the end
    f = data / "models" / "mirror.gguf"
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
    assert hashlib.sha256(f.read_bytes()).hexdigest() == served.sha256
    assert sorted(p.name for p in (data / "models").iterdir()) == ["mirror.gguf"]  # no part left
    listed = cli(data, "list")
    assert "mirror" in listed.stdout
    again = cli(data, "pull", served.url("/files/model.gguf"), "--sha256", served.sha256, "--name", "mirror")
    assert again.returncode != 0 and "exists already" in again.stderr


def test_a_hub_reference_takes_its_checksum_from_the_hub(tmp_path: Path, served: Served) -> None:
    data = tmp_path / "data"
    r = cli(data, "pull", "hf:acme/tiny/gemma.gguf", "--quiet", env={"HF_ENDPOINT": served.url("")})
    assert r.returncode == 0, r.stderr
    assert (data / "models" / "gemma.gguf").stat().st_size == served.path.stat().st_size
    assert r.stderr == ""


def test_a_cut_download_resumes_where_it_stopped(tmp_path: Path, served: Served) -> None:
    data = tmp_path / "data"
    served.cut_after = 10_000_000
    served.ranges.clear()
    first = cli(data, "pull", served.url("/files/model.gguf"), "--sha256", served.sha256, "--name", "resumed", "--quiet")
    assert first.returncode != 0 and "run the same command again to resume" in first.stderr
    part = data / "models" / ".pull-resumed.part"
    kept = part.stat().st_size
    assert 0 < kept <= 10_000_000 and stat.S_IMODE(os.stat(part).st_mode) == 0o600
    second = cli(data, "pull", served.url("/files/model.gguf"), "--sha256", served.sha256, "--name", "resumed", "--quiet")
    assert second.returncode == 0, second.stderr
    assert served.ranges == [f"bytes={kept}-"]
    assert hashlib.sha256((data / "models" / "resumed.gguf").read_bytes()).hexdigest() == served.sha256
    assert not part.exists()


def test_a_wrong_checksum_keeps_nothing(tmp_path: Path, served: Served) -> None:
    data = tmp_path / "data"
    r = cli(data, "pull", served.url("/files/model.gguf"), "--sha256", "0" * 64, "--name", "bad", "--quiet")
    assert r.returncode != 0 and "does not match" in r.stderr and served.sha256 in r.stderr
    assert [p.name for p in (data / "models").iterdir()] == []


@pytest.mark.parametrize(("ref", "sha", "says"), [
    ("http://example.com/m.gguf", "0" * 64, "plain http only to a loopback host"),
    ("https://example.com/m.gguf", None, "--sha256: is required"),
    ("https://example.com/m.gguf", "xyz", "--sha256: must be 64 hex digits"),
    ("hf:acme", None, "REF: must be"),
    ("ftp://example.com/m.gguf", "0" * 64, "REF: must be"),
])
def test_refused_references(tmp_path: Path, ref: str, sha: str | None, says: str) -> None:
    r = cli(tmp_path / "data", "pull", ref, *(["--sha256", sha] if sha else []))
    assert r.returncode != 0 and says in r.stderr, r.stderr
