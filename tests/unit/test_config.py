"""Config: defaults need no file; every mistake names the file, key and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import ConfigError
from edge_agent.config import load_config


def test_defaults_need_no_file(tmp_path: Path) -> None:
    cfg = load_config(None, env={"EDGE_AGENT_DATA_DIR": str(tmp_path)})
    assert cfg.socket_path == tmp_path / "edge-agent.sock"
    assert cfg.database_path == tmp_path / "context.db"
    assert cfg.server.listen == "" and cfg.cloud.address == ""


def test_file_then_environment_overrides(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('data_dir = "/x"\n[server]\nqueue_depth = 3\nlisten = "127.0.0.1:7000"\n[cloud]\naddress = "h:1"\n')
    cfg = load_config(str(f), env={"EDGE_AGENT_CLOUD": "other:2"})
    assert cfg.data_dir == "/x" and cfg.server.queue_depth == 3
    assert cfg.cloud.address == "other:2"


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("[server]\nqueue_depht = 3\n", "server.queue_depht", "unknown key"),
        ("[server]\nqueue_depth = 'three'\n", "server.queue_depth", "type int"),
        ("[limits]\nmax_tokens = -5\n", "limits.max_tokens", "non-negative"),
        ("[server]\nlisten = '0.0.0.0:80'\n", "server.listen", "loopback"),
        ("colour = 1\n", "colour", "unknown key"),
        ("log_level = 'LOUD'\n", "log_level", "one of"),
        ("[server\n", "<file>", "valid TOML"),
        ("[model]\nkeep_alive = '5 minutes'\n", "model.keep_alive", "a duration such as 5m"),
        ("[model]\nkv_type_k = 'q2_k'\n", "model.kv_type_k", "one of f16, q8_0, q4_0"),
        ("[model]\nkv_type_v = 'q8_0'\nflash_attn = 'off'\n", "model.kv_type_v", "needs flash attention"),
        ("[model]\nflash_attn = 'yes'\n", "model.flash_attn", "one of auto, on, off"),
        ("[server]\nmax_connections = 0\n", "server.max_connections", "at least 1"),
        ("[server]\nkv_budget_mib = -1\n", "server.kv_budget_mib", "non-negative"),
        ("[server]\nkv_budget_mib = nan\n", "server.kv_budget_mib", "a size in MiB"),
        ("[server]\nkv_budget_mib = '1G'\n", "server.kv_budget_mib", "type float"),
        ("[http]\nread_timeout_s = 0.0\n", "http.read_timeout_s", "seconds in 0.1..86400"),
        ("[server]\nhandshake_timeout_s = 1e9\n", "server.handshake_timeout_s", "seconds in"),
        ("[http]\nallowed_origins = '*'\n", "http.allowed_origins", "a list of strings"),
        ("[http]\nallowed_origins = ['*']\n", "http.allowed_origins", "no wildcard"),
        ("[http]\nallowed_origins = ['http://localhost:3000/app']\n", "http.allowed_origins", "no path"),
        ("[http]\nallowed_origins = ['localhost:3000']\n", "http.allowed_origins", "scheme http or https"),
        ("[http]\nallowed_hosts = ['*.example']\n", "http.allowed_hosts", "no wildcard"),
    ],
)
def test_mistakes_name_file_key_and_expectation(tmp_path: Path, text: str, key: str, expected: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(str(f), env={})
    assert info.value.file.endswith("bad.toml") and info.value.key == key
    assert expected in info.value.expected


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.toml"):
        load_config(str(tmp_path / "nope.toml"), env={})


def test_annotated_example_config_is_valid_and_matches_defaults() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "edge-agent.toml"
    cfg = load_config(str(example), env={})
    defaults = load_config(None, env={})
    assert (cfg.server, cfg.http, cfg.model, cfg.cloud, cfg.limits) == (defaults.server, defaults.http, defaults.model, defaults.cloud, defaults.limits)


def test_keep_alive_takes_ollama_values(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[model]\nkeep_alive = 90\n")
    assert load_config(str(f), env={}).keep_alive_s == 90.0
    assert load_config(None, env={"EDGE_AGENT_KEEP_ALIVE": "-1"}).keep_alive_s is None
    assert load_config(None, env={"EDGE_AGENT_KEEP_ALIVE": "0"}).keep_alive_s == 0.0
    assert load_config(None, env={}).keep_alive_s == 300.0
    with pytest.raises(ConfigError, match="EDGE_AGENT_KEEP_ALIVE"):
        load_config(None, env={"EDGE_AGENT_KEEP_ALIVE": "soon"})


def test_a_model_alias_is_checked_and_named_in_the_error(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[model]\nalias = "assistant"\n')
    assert load_config(str(f), env={}).model.alias == "assistant"
    assert load_config(None, env={"EDGE_AGENT_MODEL_ALIAS": "local-llm"}).model.alias == "local-llm"
    f.write_text('[model]\nalias = "my model"\n')
    with pytest.raises(ConfigError) as err:
        load_config(str(f), env={})
    assert "c.toml" in str(err.value) and "model.alias" in str(err.value)


def test_door_lists_from_the_file_and_the_environment(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[http]\nallowed_origins = ['http://localhost:3000']\nallowed_hosts = ['box.local']\n")
    cfg = load_config(str(f), env={"EDGE_AGENT_DATA_DIR": str(tmp_path)})
    assert cfg.http.allowed_origins == ("http://localhost:3000",) and cfg.http.allowed_hosts == ("box.local",)
    env = {"EDGE_AGENT_HTTP_ORIGINS": "http://a.test, https://b.test:8443", "EDGE_AGENT_TOKEN_FILE": str(tmp_path / "t")}
    cfg = load_config(None, env=env)
    assert cfg.http.allowed_origins == ("http://a.test", "https://b.test:8443")
    assert cfg.token_path == tmp_path / "t"
    assert load_config(None, env={"EDGE_AGENT_DATA_DIR": str(tmp_path)}).token_path == tmp_path / "token"
    with pytest.raises(ConfigError, match="EDGE_AGENT_HTTP_ORIGINS"):
        load_config(None, env={"EDGE_AGENT_HTTP_ORIGINS": "*"})


def test_a_directory_or_undecodable_file_is_one_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="directory") as info:
        load_config(str(tmp_path), env={})
    assert str(tmp_path) in str(info.value)
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'[server]\nlisten = "\xff\xfe"\n')
    with pytest.raises(ConfigError, match="UTF-8") as info:
        load_config(str(bad), env={})
    assert "bad.toml" in str(info.value) and "\n" not in str(info.value)
