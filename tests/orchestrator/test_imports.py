"""The orchestrator stays pure: no gRPC, no llama.cpp, no daemon imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("grpc", "llama_cpp", "edge_agent", "cloud_stub", "edgecloud")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_forbidden_imports_in_source() -> None:
    files = sorted((ROOT / "orchestrator").rglob("*.py"))
    assert files
    for f in files:
        bad = _imports(f) & set(FORBIDDEN)
        assert not bad, f"{f.relative_to(ROOT)} imports {sorted(bad)}"


def test_importing_everything_loads_no_forbidden_module() -> None:
    mods = [p.stem for p in (ROOT / "orchestrator").glob("*.py") if p.stem != "__init__"]
    code = (
        "import sys\n"
        + "".join(f"import orchestrator.{m}\n" for m in mods)
        + f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}]\n"
        + "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_common_depends_on_nothing_of_the_project() -> None:
    """The shared package may speak gRPC (the status table, the rpc lifecycle) but knows
    neither the daemon, the cloud side, the routing brain nor llama.cpp."""
    files = sorted((ROOT / "common").rglob("*.py"))
    assert files
    for f in files:
        bad = _imports(f) & {"llama_cpp", "edge_agent", "cloud_stub", "orchestrator"}
        assert not bad, f"{f.relative_to(ROOT)} imports {sorted(bad)}"


def _dotted_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


PIPELINE_FORBIDDEN = ("grpc", "llama_cpp", "edgecloud", "google.protobuf", "edge_agent.transport", "edge_agent.adapters", "edge_agent.cli")


def test_pipeline_imports_no_transport_runtime_or_adapter() -> None:
    """The request path is plain Python over its ports: testable in milliseconds."""
    files = sorted((ROOT / "edge_agent" / "pipeline").rglob("*.py"))
    assert files
    for f in files:
        bad = {m for m in _dotted_imports(f) if any(m == x or m.startswith(x + ".") for x in PIPELINE_FORBIDDEN)}
        assert not bad, f"{f.relative_to(ROOT)} imports {sorted(bad)}"


def test_importing_the_pipeline_loads_no_grpc_or_llama_cpp() -> None:
    mods = sorted(p.stem for p in (ROOT / "edge_agent" / "pipeline").glob("*.py") if p.stem != "__init__")
    code = (
        "import sys\n"
        + "".join(f"import edge_agent.pipeline.{m}\n" for m in mods)
        + "bad = [m for m in sys.modules if m.split('.')[0] in ('grpc', 'llama_cpp')]\n"
        + "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == ""
