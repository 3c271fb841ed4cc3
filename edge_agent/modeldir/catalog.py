"""The model directory ``edge-agent model`` manages (``[model] dir``, by default
``<data_dir>/models``, 0700, files 0600):

* ``<name>.gguf``: a model added with ``model add`` (a private copy, so moving or
  deleting the original changes nothing);
* ``selected``: the name chosen with ``model use``.

The shipped model is always there under its own name (it lives in the model cache and
is assembled offline from its package). Which model the daemon runs: ``[model] path``
(``EDGE_AGENT_MODEL``: a file, or a name from this directory) when set, else the
selected one, else the shipped one. The daemon holds a shared ``flock`` on the file it
runs, so ``model rm`` can tell a model in use by a running daemon.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from common.errors import ConfigError, FailedPrecondition, InvalidArgument, NotFound
from common.model_files import DEFAULT_MODEL_NAME, default_model_path
from edge_agent import datadir
from edge_agent.config import Config

SHIPPED = Path(DEFAULT_MODEL_NAME).stem
NAME_RULE = "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Entry:
    name: str
    path: Path | None  # None: the shipped model before it was first assembled
    shipped: bool = False

    def file(self) -> Path:
        """The GGUF file (assembling the shipped model on first use)."""
        return self.path if self.path is not None else default_model_path()


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name) or name.endswith(".gguf"):
        raise InvalidArgument("name", f"must be {NAME_RULE}, without .gguf (got {name[:80]!r})")
    return name


class Catalog:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.dir = cfg.models_dir

    # -- reading ----------------------------------------------------------------------
    def entries(self) -> list[Entry]:
        found = [Entry(SHIPPED, _shipped_path(), shipped=True)]
        if self.dir.is_dir():
            for p in sorted(self.dir.glob("*.gguf")):
                if p.is_file() and _NAME.fullmatch(p.stem) and p.stem != SHIPPED:
                    found.append(Entry(p.stem, p))
        return found

    def get(self, name: str) -> Entry:
        for e in self.entries():
            if e.name == name:
                return e
        known = ", ".join(e.name for e in self.entries())
        raise NotFound(f"model: no model named {name[:80]!r} in {self.dir} (have: {known})")

    def selected_name(self) -> str:
        """The name chosen with ``model use`` (the shipped model when none is)."""
        try:
            name = (self.dir / "selected").read_text().strip()
        except FileNotFoundError:
            return SHIPPED
        return name if _NAME.fullmatch(name) else SHIPPED

    def active(self) -> Entry:
        """The model the daemon runs: ``[model] path``, else the selected one, else the
        shipped one."""
        configured = self.cfg.model.path
        if configured:
            path = Path(configured).expanduser()
            if "/" not in configured and not path.exists() and _NAME.fullmatch(configured):
                try:
                    return self.get(configured)
                except NotFound:
                    raise ConfigError("config", "model.path", f"an existing GGUF file or a model name in {self.dir} (got {configured!r}; also set by EDGE_AGENT_MODEL)") from None
            if not path.is_file():
                what = "is a directory" if path.is_dir() else "does not exist"
                raise ConfigError("config", "model.path", f"an existing GGUF file or a model name in {self.dir} (got {configured!r}, which {what}; also set by EDGE_AGENT_MODEL)")
            return Entry(path.stem, path)
        name = self.selected_name()
        try:
            return self.get(name)
        except NotFound:
            raise ConfigError(str(self.dir / "selected"), "selected", f"a model in {self.dir} (got {name!r}; run `edge-agent model use NAME`)") from None

    def in_use_by_daemon(self, entry: Entry) -> bool:
        """Whether a running daemon holds ``entry``'s file."""
        if entry.path is None or not entry.path.exists():
            return False
        fd = os.open(entry.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    # -- changing ---------------------------------------------------------------------
    def check_new_name(self, name: str) -> None:
        """Refuse a name that is taken (the shipped model's, or an existing file's)."""
        if name == SHIPPED:
            raise FailedPrecondition(f"model: {SHIPPED!r} is the shipped model's name; choose another with --name")
        target = self.dir / f"{name}.gguf"
        if target.exists():
            raise FailedPrecondition(f"model: {name!r} exists already ({target}); remove it first or choose another --name")

    def add(self, source: Path, name: str | None = None) -> Entry:
        """Copy a GGUF file in (checked by llama.cpp's loader first)."""
        from edge_agent.modeldir import gguf

        if not source.is_file():
            raise InvalidArgument("path", f"{source} is not a file")
        gguf.read(source)
        name = check_name(name if name is not None else re.sub(r"[^A-Za-z0-9._-]", "-", source.stem)[:64])
        self.check_new_name(name)
        datadir.make_private(self.dir)
        fd, tmp = tempfile.mkstemp(prefix=".add-", suffix=".gguf", dir=self.dir)
        try:
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                shutil.copyfileobj(src, out, 4 << 20)
                out.flush()
                os.fsync(out.fileno())
            return self.adopt(Path(tmp), name, checked=True)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def adopt(self, tmp: Path, name: str, *, checked: bool = False) -> Entry:
        """Give a complete file inside the model directory its name (0600), after
        llama.cpp's loader has read it (unless ``checked``)."""
        from edge_agent.modeldir import gguf

        if not checked:
            gguf.read(tmp)
        self.check_new_name(name)
        target = self.dir / f"{name}.gguf"
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
        return Entry(name, target)

    def use(self, name: str) -> Entry:
        entry = self.get(name)
        datadir.make_private(self.dir)
        fd, tmp = tempfile.mkstemp(prefix=".selected-", dir=self.dir)
        with os.fdopen(fd, "w") as f:
            f.write(name + "\n")
        os.replace(tmp, self.dir / "selected")
        return entry

    def remove(self, name: str) -> Entry:
        entry = self.get(name)
        if entry.shipped:
            raise FailedPrecondition(f"model: {name!r} is the shipped model, always available; it cannot be removed")
        if self.active().name == name:
            raise FailedPrecondition(f"model: {name!r} is the model in use; `edge-agent model use` another one first")
        if self.in_use_by_daemon(entry):
            raise FailedPrecondition(f"model: {name!r} is in use by a running edge-agent; stop it or let it switch first")
        assert entry.path is not None
        entry.path.unlink()
        return entry


def hold(path: Path) -> int:
    """A shared lock on the model file for as long as the returned descriptor is open."""
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def _shipped_path() -> Path | None:
    from common.model_files import default_cache_dir

    p = default_cache_dir() / DEFAULT_MODEL_NAME
    return p if p.exists() else None
