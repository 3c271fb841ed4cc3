"""``edge-agent model pull``: download a GGUF into the model directory.

A reference is one of

* ``https://host/path/model.gguf`` with ``--sha256`` (``http://`` only to a loopback
  host, e.g. a mirror on this machine);
* ``hf:owner/repo/path/file.gguf`` (optionally ``@revision``): a file of a Hugging Face
  repository, fetched from ``$HF_ENDPOINT`` (default ``https://huggingface.co``) at
  ``/owner/repo/resolve/<revision>/path/file.gguf``. Its SHA-256 comes from the Hub's
  ``X-Linked-Etag`` header (the LFS object id) when ``--sha256`` is not given.

The file is written to ``<models dir>/.pull-<name>.part`` (0600); an interrupted pull
resumes from what is there (HTTP range request; a server that ignores the range makes it
start over). The whole file's SHA-256 is checked before llama.cpp's loader reads it and
before it takes its name: a file that does not match is deleted, never kept. Nothing but
httpx: the Hub's resolve URL and headers are all a GGUF download needs, and the same code
serves any mirror.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx

from common.errors import FailedPrecondition, InvalidArgument, Unavailable
from edge_agent import datadir
from edge_agent.modeldir.catalog import Catalog, Entry, check_name

CHUNK = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")
_HF_REF = re.compile(r"hf:(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)/(?P<file>[^@]+\.gguf)(?:@(?P<rev>[\w./-]+))?")
REF_RULE = "an https:// URL of a .gguf file (with --sha256) or hf:owner/repo/file.gguf[@revision]"


@dataclass(frozen=True)
class Source:
    url: str
    file_name: str
    sha256: str | None  # None: to be learnt from the server (Hugging Face)
    hub: bool = False


def parse_ref(ref: str, sha256: str | None) -> Source:
    """What to download, checked: the scheme, the host, the checksum's form."""
    if sha256 is not None:
        sha256 = sha256.strip().lower()
        if not _SHA256.fullmatch(sha256):
            raise InvalidArgument("--sha256", f"must be 64 hex digits (got {sha256[:80]!r})")
    m = _HF_REF.fullmatch(ref)
    if m:
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
        _check_url(endpoint, "HF_ENDPOINT")
        rev = m["rev"] or "main"
        url = f"{endpoint}/{m['repo']}/resolve/{quote(rev, safe='')}/{quote(m['file'])}"
        return Source(url, Path(m["file"]).name, sha256, hub=True)
    if ref.startswith("hf:"):
        raise InvalidArgument("REF", f"must be {REF_RULE} (got {ref[:120]!r})")
    _check_url(ref, "REF")
    name = Path(urlsplit(ref).path).name
    if not name:
        raise InvalidArgument("REF", f"must name a file (got {ref[:120]!r})")
    if sha256 is None:
        raise InvalidArgument("--sha256", "is required for a URL: the file's SHA-256, to check what arrives")
    return Source(ref, name, sha256)


def _check_url(url: str, field: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and _loopback(parts.hostname):
        return
    raise InvalidArgument(field, f"must be {REF_RULE}; plain http only to a loopback host (got {url[:120]!r})")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Progress:
    """A one-line progress bar on a terminal; a line per 10% otherwise."""

    def __init__(self, total: int | None, done: int, out: Callable[[str], None] | None = None) -> None:
        self.total, self.done, self.t0, self.start = total, done, time.monotonic(), done
        self.tty = sys.stderr.isatty()
        self._out = out or (lambda s: print(s, end="" if self.tty else "\n", file=sys.stderr, flush=True))
        self._last = -1

    def add(self, n: int) -> None:
        self.done += n
        if self.total:
            pct = int(100 * self.done / self.total)
            if pct == self._last or (not self.tty and pct // 10 == self._last // 10 and pct < 100):
                return
            self._last = pct
        rate = (self.done - self.start) / max(time.monotonic() - self.t0, 1e-6) / 2**20
        if self.total:
            bar = "#" * (30 * self.done // self.total)
            line = f"[{bar:<30}] {pct:3d}% {self.done / 2**20:.1f}/{self.total / 2**20:.1f} MiB {rate:.1f} MiB/s"
        else:
            line = f"{self.done / 2**20:.1f} MiB {rate:.1f} MiB/s"
        self._out(("\r" if self.tty else "") + line)

    def close(self) -> None:
        if self.tty:
            self._out("\n")


def pull(cat: Catalog, ref: str, *, name: str | None = None, sha256: str | None = None,
         client: httpx.Client | None = None, progress: bool = True) -> Entry:
    """Download ``ref`` as model ``name`` (default: the file name without .gguf)."""
    src = parse_ref(ref, sha256)
    name = check_name(name if name is not None else re.sub(r"[^A-Za-z0-9._-]", "-", Path(src.file_name).stem)[:64])
    cat.check_new_name(name)
    datadir.make_private(cat.dir)
    part = cat.dir / f".pull-{name}.part"
    own = client is None
    http = client or httpx.Client(follow_redirects=True, timeout=httpx.Timeout(30.0, read=60.0))
    try:
        expected = _download(http, src, part, progress)
    finally:
        if own:
            http.close()
    got = _sha256_of(part)
    if got != expected:
        part.unlink(missing_ok=True)
        raise FailedPrecondition(f"model pull: {src.file_name}: SHA-256 {got} does not match the expected {expected}; the download was deleted")
    try:
        return cat.adopt(part, name)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def _download(http: httpx.Client, src: Source, part: Path, progress: bool) -> str:
    """Fetch (or resume) into ``part``; the SHA-256 the file must have."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        with http.stream("GET", src.url, headers=headers) as r:
            if r.status_code == 416 and have:  # nothing left to fetch: the part is whole
                return src.sha256 or _hub_sha256(r)
            if r.status_code not in (200, 206):
                raise FailedPrecondition(f"model pull: {src.url} answered HTTP {r.status_code}")
            expected = src.sha256 or _hub_sha256(r)
            resumed = r.status_code == 206 and have > 0
            total = _total(r, have if resumed else 0)
            bar = Progress(total, have if resumed else 0) if progress else None
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if resumed else os.O_TRUNC), 0o600)
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "ab" if resumed else "wb") as out:
                for chunk in r.iter_bytes():  # as it arrives: a cut keeps every byte received
                    out.write(chunk)
                    if bar:
                        bar.add(len(chunk))
                out.flush()
                os.fsync(out.fileno())
            if bar:
                bar.close()
    except httpx.HTTPError as exc:
        raise Unavailable(f"model pull: {src.url}: {exc.__class__.__name__}: {exc}; run the same command again to resume") from None
    return expected


def _hub_sha256(r: httpx.Response) -> str:
    """The LFS object id the Hub sends for a large file (its SHA-256)."""
    for resp in (*r.history, r):  # the Hub sends it with its redirect to the storage
        for header in ("x-linked-etag", "etag"):
            etag = resp.headers.get(header, "").removeprefix("W/").strip('"').lower()
            if _SHA256.fullmatch(etag):
                return etag
    raise FailedPrecondition("model pull: the server sent no SHA-256 for this file (no LFS X-Linked-Etag); pass --sha256")


def _total(r: httpx.Response, offset: int) -> int | None:
    length = r.headers.get("content-length")
    return offset + int(length) if length and length.isdigit() else None


def _sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()
