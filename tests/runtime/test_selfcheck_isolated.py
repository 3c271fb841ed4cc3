"""The self-check child imports nothing from the working directory: ``python -m``
puts it first on ``sys.path``, and a ``common.py`` there would shadow the project's
``common`` package inside the child (the daemon then failed with a misleading "run
make install")."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.runtime import selfcheck

HOSTILE = "import pathlib\npathlib.Path(__file__).with_suffix('.ran').write_text('ran')\nraise SystemExit(3)\n"


@pytest.mark.parametrize("pythonpath", [None, ".", ":"])
def test_a_common_py_in_the_working_directory_does_not_run_in_the_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pythonpath: str | None,
) -> None:
    (tmp_path / "common.py").write_text(HOSTILE)
    monkeypatch.chdir(tmp_path)
    env = None
    if pythonpath is not None:
        import os

        env = {**os.environ, "PYTHONPATH": pythonpath}
    res = selfcheck.run(tmp_path / "missing.gguf", timeout_s=120, env=env)
    assert not (tmp_path / "common.ran").exists(), "common.py from the working directory ran in the child"
    assert not res.ok and "status 3" not in res.cause  # it failed on the missing model, not in common.py


def test_the_child_command_is_isolated_from_the_working_directory() -> None:
    cmd = selfcheck.child_command("python3")
    assert cmd[:3] == ["python3", "-P", "-m"] and cmd[3] == "edge_agent.runtime.selfcheck"
    env = selfcheck.child_env({"PYTHONPATH": f"/abs/a::rel:{Path('/abs/b')}", "X": "1"})
    assert env == {"PYTHONPATH": "/abs/a:/abs/b", "X": "1"}
    assert "PYTHONPATH" not in selfcheck.child_env({"PYTHONPATH": "."})
