"""A port already taken is one line naming the key and the address, not ``OSError: [Errno 98]``."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.errors import ConfigError
from edge_agent.config import load_config


@pytest.fixture()
def taken() -> Iterator[str]:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        yield f"127.0.0.1:{s.getsockname()[1]}"
    finally:
        s.close()


def test_http_door_port_in_use_names_the_address(taken: str, tmp_path: Path) -> None:
    from edge_agent.daemon.http_door import bind_http

    cfg = load_config(None, env={"EDGE_AGENT_DATA_DIR": str(tmp_path), "EDGE_AGENT_HTTP": taken})
    with pytest.raises(ConfigError) as info:
        bind_http(cfg)
    assert info.value.key == "http.listen" and taken in info.value.message


def test_metrics_port_in_use_names_the_address(taken: str) -> None:
    from edge_agent.adapters.metrics import MetricsServer, StatsCollector
    from edge_agent.pipeline.stats import Stats

    collector = StatsCollector(Stats().snapshot, lambda: "disabled", lambda: 0)
    with pytest.raises(ConfigError) as info:
        MetricsServer(taken, collector)
    assert info.value.key == "server.metrics" and taken in info.value.message
