"""Ports in listen / metrics addresses: ASCII digits, 1..65535 (0: a free port)."""

from __future__ import annotations

import pytest

from common.errors import ConfigError
from edge_agent.config import load_config


@pytest.mark.parametrize("var", ["EDGE_AGENT_LISTEN", "EDGE_AGENT_METRICS"])
@pytest.mark.parametrize("value", ["127.0.0.1:99999", "127.0.0.1:65536", "127.0.0.1:５００５１", "127.0.0.1:-1", "127.0.0.1:"])
def test_bad_ports_are_refused_naming_the_key(var: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, env={var: value})
    key = "server.listen" if var == "EDGE_AGENT_LISTEN" else "server.metrics"
    assert info.value.key == key and var in info.value.message and value in info.value.message


@pytest.mark.parametrize("value", ["127.0.0.1:50051", "localhost:1", "[::1]:65535", "127.0.0.1:0"])
def test_good_ports_pass(value: str) -> None:
    assert load_config(None, env={"EDGE_AGENT_LISTEN": value}).server.listen == value


def test_an_ipv6_host_needs_brackets() -> None:
    with pytest.raises(ConfigError, match=r"in brackets, e.g. \[::1\]:50051"):
        load_config(None, env={"EDGE_AGENT_LISTEN": "::1:50999"})
