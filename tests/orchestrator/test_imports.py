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
    files = sorted((ROOT / "common").rglob("*.py"))
    assert files
    for f in files:
        bad = _imports(f) & {*FORBIDDEN, "orchestrator"}
        assert not bad, f"{f.relative_to(ROOT)} imports {sorted(bad)}"
