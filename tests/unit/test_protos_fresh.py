"""The committed generated code must be exactly what `make protos` produces."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_matches_protos(tmp_path: Path) -> None:
    src = ROOT / "protos"
    shutil.copytree(src, tmp_path / "protos", ignore=shutil.ignore_patterns("*_pb2*", "__pycache__"))
    protos = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "protos/edgecloud/v1").glob("*.proto"))
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-Iprotos", "--python_out=protos", "--grpc_python_out=protos", "--pyi_out=protos", *protos],
        cwd=tmp_path, check=True,
    )
    generated = sorted(p.name for p in (tmp_path / "protos/edgecloud/v1").glob("*_pb2*"))
    committed = sorted(p.name for p in (src / "edgecloud/v1").glob("*_pb2*"))
    assert generated == committed and generated, "run `make protos` and commit the result"
    _, mismatch, errors = filecmp.cmpfiles(tmp_path / "protos/edgecloud/v1", src / "edgecloud/v1", generated, shallow=False)
    assert not mismatch and not errors, f"stale generated files {mismatch + errors}: run `make protos`"
