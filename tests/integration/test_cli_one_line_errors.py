"""Mistakes a user makes on the command line end in one line on stderr naming the file or
key, never a traceback or native log lines first: a truncated GGUF for `model add`, a
model path that does not exist, a selected model whose file is gone, a --config that is
a directory or not UTF-8."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import agent_env

pytestmark = pytest.mark.model


def _cli(data: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_agent.cli.main", *args],
        env=agent_env(data, **env), capture_output=True, text=True, timeout=120, check=False,
    )


def _one_line(p: subprocess.CompletedProcess[str], *words: str) -> str:
    assert p.returncode != 0, p.stdout
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edge-agent: "), p.stderr
    assert "Traceback" not in p.stderr and "ERROR" not in p.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("keep", [8, 100_000])
def test_a_truncated_gguf_for_model_add(tmp_path: Path, model_path: Path, keep: int) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(model_path.read_bytes()[:keep])
    _one_line(_cli(tmp_path / "data", "model", "add", str(cut)), str(cut), "could not read this GGUF file (")


@pytest.mark.parametrize("value", ["../x", "no/such.gguf"])
def test_a_model_path_that_does_not_exist(tmp_path: Path, value: str) -> None:
    _one_line(_cli(tmp_path / "data", "model", "list", EDGE_AGENT_MODEL=value), "model.path", repr(value), "does not exist")


def test_a_selected_model_whose_file_is_gone(tmp_path: Path) -> None:
    models = tmp_path / "data" / "models"
    models.mkdir(parents=True)
    (models / "selected").write_text("gone\n")
    _one_line(_cli(tmp_path / "data", "model", "list"), str(models / "selected"), "'gone'")


def test_a_config_that_is_a_directory_or_not_utf8(tmp_path: Path) -> None:
    _one_line(_cli(tmp_path / "data", "--config", str(tmp_path), "model", "list"), str(tmp_path), "directory")
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'[model]\npath = "\xff"\n')
    _one_line(_cli(tmp_path / "data", "--config", str(bad), "model", "list"), str(bad), "UTF-8")
