"""Daemon configuration: frozen dataclasses loaded in one place.

Sources, later ones winning: built-in defaults, the TOML file (``--config`` or
``$EDGE_AGENT_CONFIG``), then environment overrides:

==========================  ==============================================
``EDGE_AGENT_DATA_DIR``     data directory (database, ledger, socket, logs)
``EDGE_AGENT_SOCKET``       unix socket path
``EDGE_AGENT_LISTEN``       loopback TCP address, e.g. ``127.0.0.1:50051``
``EDGE_AGENT_PARALLEL``     requests decoded at once (``server.parallel``, 1..8)
``EDGE_AGENT_TOKEN_FILE``   the bearer token every TCP listener requires
                            (default ``<data_dir>/token``, made 0600 at first
                            start; ``edge-agent token show`` / ``rotate``)
``EDGE_AGENT_METRICS``      Prometheus /metrics loopback address ("" = off)
``EDGE_AGENT_HTTP``         OpenAI-compatible HTTP front door: ``unix``,
                            ``unix:PATH`` or loopback ``host:port`` ("" = off)
``EDGE_AGENT_HTTP_TOKEN``   a fixed bearer token for the HTTP front door instead
                            of the token file (then required on its unix socket
                            too; "" = the token file, on TCP only)
``EDGE_AGENT_HTTP_HOSTS``   extra ``Host`` values the HTTP door accepts, comma-
                            separated (loopback names are always accepted)
``EDGE_AGENT_HTTP_ORIGINS`` browser origins allowed to call the HTTP door, comma-
                            separated ``scheme://host[:port]`` (none by default)
``EDGE_AGENT_MODEL``        GGUF file path or a name in the model directory
                            (default: the one chosen by ``edge-agent model use``,
                            else the shipped model)
``EDGE_AGENT_KEEP_ALIVE``   idle time before the model is freed (``5m``; 0, -1)
``EDGE_AGENT_POLICY``       routing policy TOML file
``EDGE_AGENT_CLOUD``        cloud-stub address ``host:port`` ("" disables the cloud)
``EDGE_AGENT_CLOUD_TOKEN``  bearer token for the cloud
``EDGE_AGENT_LOG_LEVEL``    DEBUG / INFO / WARNING / ERROR
==========================  ==============================================

Errors name the file, the key and what was expected.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from common.duration import RULE as DURATION_RULE
from common.duration import parse_keep_alive
from common.errors import ConfigError


@dataclass(frozen=True)
class ServerConfig:
    """Where and how the daemon listens."""

    socket: str = ""  # "" -> <data_dir>/edge-agent.sock
    listen: str = ""  # loopback TCP "host:port"; "" -> no TCP
    max_message_bytes: int = 4 * 1024 * 1024
    queue_depth: int = 16  # requests waiting for the model beyond the running ones
    # Requests the local model decodes at once, in shared steps (each answer stays the
    # one it gets alone); every one has its own KV cache of model.n_ctx cells, so the
    # KV memory is parallel x what one needs. 1: one at a time.
    parallel: int = 4
    # The KV cache of all of them (parallel x model.n_ctx cells of kv_type_k/v) may
    # not exceed this, checked at start before the weights load; 0: unchecked.
    kv_budget_mib: float = 2048.0
    per_app: int = 0  # running requests one app may hold (0 -> parallel - 1, at least 1)
    grace_s: float = 5.0  # drain time on shutdown
    metrics: str = ""  # Prometheus /metrics on loopback "host:port"; "" -> off
    # The bearer token the TCP listener (and the HTTP door on TCP) requires; the unix
    # socket needs none (0600). "" -> <data_dir>/token, generated at first start.
    token_file: str = ""
    # Open connections per gRPC door (the unix socket and TCP each have their own), so
    # a flood on one never takes the file handles the other needs.
    max_connections: int = 128
    max_streams: int = 100  # concurrent calls on one connection
    idle_timeout_s: float = 60.0  # a connection with no call for this long is closed (clients reconnect)
    handshake_timeout_s: float = 5.0  # a connection must finish the HTTP/2 handshake within this


@dataclass(frozen=True)
class HttpConfig:
    """The OpenAI-compatible HTTP front door (off by default)."""

    listen: str = ""  # "unix" (<data_dir>/openai.sock), "unix:PATH" or loopback "host:port"
    # A fixed bearer token, required on every request (unix socket too); "" -> the
    # token file (server.token_file), required on TCP only.
    token: str = ""
    # Host header values accepted besides the loopback names (DNS rebinding guard).
    allowed_hosts: tuple[str, ...] = ()
    # Browser origins ("scheme://host[:port]") whose requests are served and whose CORS
    # preflights are answered; any other Origin is refused (no wildcard).
    allowed_origins: tuple[str, ...] = ()
    max_connections: int = 128  # open connections to the door
    # Time a connection gets to send a whole request (head and body) after it opens or
    # after its previous response; idle and slow connections are closed after it.
    read_timeout_s: float = 15.0


@dataclass(frozen=True)
class ModelConfig:
    """The local model."""

    path: str = ""  # "" -> the shipped default model
    n_ctx: int = 4096
    n_threads: int = 0  # 0 -> all cores
    speculative: bool = True
    warmup: bool = True
    selfcheck: bool = True  # check the runtime in a child process before loading the model
    calibrate: bool = True  # measure the verification cost curve at start
    # Idle time after which the weights and KV cache are freed (Ollama's keep_alive):
    # "5m", "1h", "30s", seconds as a number; 0 frees them after each request, a
    # negative value keeps them forever. The next request loads them again.
    keep_alive: str = "5m"
    # KV cache element types: f16, q8_0 or q4_0 (a quantized V cache needs flash
    # attention, which "auto" turns on where llama.cpp supports it).
    kv_type_k: str = "f16"
    kv_type_v: str = "f16"
    flash_attn: str = "auto"  # auto, on, off
    # Power of one busy core, watts: the energy estimate (CPU time x this) where the
    # host exposes no RAPL energy counters.
    watts_per_core: float = 5.0
    dir: str = ""  # the model directory (`edge-agent model ...`); "" -> <data_dir>/models
    # The model id apps see and send (GET /v1/models, /api/tags), whatever file runs;
    # "" -> the running model's name. The running model's own name is accepted too.
    alias: str = ""


@dataclass(frozen=True)
class CloudConfig:
    """The link to cloud-stub."""

    address: str = ""  # "" -> no cloud
    token: str = ""
    timeout_s: float = 60.0
    connect_timeout_s: float = 2.0
    breaker_failures: int = 3  # consecutive failures that open the circuit
    breaker_cooldown_s: float = 10.0  # open time before one probe is let through
    # Attempts for a call that failed UNAVAILABLE before any answer arrived (1: no
    # retry). Every attempt is a row in the egress ledger.
    max_attempts: int = 2
    ca_file: str = ""  # TLS: CA bundle that signs the cloud's certificate ("" = plaintext)
    cert_file: str = ""  # mTLS: this agent's client certificate
    key_file: str = ""  # mTLS: its private key


@dataclass(frozen=True)
class LimitsConfig:
    """Request limits; breaking one gives INVALID_ARGUMENT / OUT_OF_RANGE naming the field."""

    max_prompt_bytes: int = 32 * 1024
    max_tokens: int = 2048
    default_max_tokens: int = 128
    context_token_budget: int = 512


@dataclass(frozen=True)
class ContextConfig:
    """Retrieval from the personal-context store."""

    # "bm25": ranked by words (FTS5 BM25 with a recency boost). "hybrid": words and
    # vectors fused by rank; the daemon embeds every item in the background while the
    # model is idle (vectors stay on the device, in the store's file). "auto": hybrid
    # when embedding_model is set, else bm25 (the shipped model's own vectors barely
    # help: benchmarks/retrieval.py).
    retrieval: str = "auto"
    # A GGUF embedding model for the vectors (e.g. all-MiniLM-L6-v2); "" -> the local
    # model's own (mean-pooled) hidden states.
    embedding_model: str = ""


@dataclass(frozen=True)
class Config:
    """The whole daemon configuration."""

    data_dir: str = ""
    policy: str = ""  # "" -> the built-in default policy
    log_level: str = "INFO"
    server: ServerConfig = field(default_factory=ServerConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    cloud: CloudConfig = field(default_factory=CloudConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    context: ContextConfig = field(default_factory=ContextConfig)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser()

    @property
    def socket_path(self) -> Path:
        return Path(self.server.socket) if self.server.socket else self.data_path / "edge-agent.sock"

    @property
    def keep_alive_s(self) -> float | None:
        """Idle seconds before the model is freed; None keeps it loaded."""
        return parse_keep_alive(self.model.keep_alive)

    @property
    def models_dir(self) -> Path:
        """The model directory ``edge-agent model`` manages."""
        return Path(self.model.dir).expanduser() if self.model.dir else self.data_path / "models"

    @property
    def http_socket_path(self) -> Path | None:
        """The HTTP front door's unix socket, if it listens on one."""
        listen = self.http.listen
        if listen == "unix":
            return self.data_path / "openai.sock"
        if listen.startswith("unix:"):
            return Path(listen.removeprefix("unix:")).expanduser()
        return None

    @property
    def token_path(self) -> Path:
        """The bearer-token file of the TCP listeners."""
        return Path(self.server.token_file).expanduser() if self.server.token_file else self.data_path / "token"

    @property
    def hybrid_retrieval(self) -> bool:
        """Whether retrieval uses vectors as well as words (``[context] retrieval``)."""
        mode = self.context.retrieval
        return mode == "hybrid" or (mode == "auto" and bool(self.context.embedding_model))

    @property
    def database_path(self) -> Path:
        return self.data_path / "context.db"

    @property
    def ledger_path(self) -> Path:
        return self.data_path / "ledger.db"


def default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "edge-agent")


_SECTIONS = {"server": ServerConfig, "http": HttpConfig, "model": ModelConfig, "cloud": CloudConfig, "limits": LimitsConfig,
             "context": ContextConfig}
_ENV = {
    "EDGE_AGENT_DATA_DIR": ("data_dir", None),
    "EDGE_AGENT_POLICY": ("policy", None),
    "EDGE_AGENT_LOG_LEVEL": ("log_level", None),
    "EDGE_AGENT_SOCKET": ("socket", "server"),
    "EDGE_AGENT_LISTEN": ("listen", "server"),
    "EDGE_AGENT_TOKEN_FILE": ("token_file", "server"),
    "EDGE_AGENT_METRICS": ("metrics", "server"),
    "EDGE_AGENT_PARALLEL": ("parallel", "server"),
    "EDGE_AGENT_HTTP": ("listen", "http"),
    "EDGE_AGENT_HTTP_TOKEN": ("token", "http"),
    "EDGE_AGENT_HTTP_HOSTS": ("allowed_hosts", "http"),
    "EDGE_AGENT_HTTP_ORIGINS": ("allowed_origins", "http"),
    "EDGE_AGENT_MODEL": ("path", "model"),
    "EDGE_AGENT_KEEP_ALIVE": ("keep_alive", "model"),
    "EDGE_AGENT_MODEL_ALIAS": ("alias", "model"),
    "EDGE_AGENT_CLOUD": ("address", "cloud"),
    "EDGE_AGENT_RETRIEVAL": ("retrieval", "context"),
    "EDGE_AGENT_EMBEDDING_MODEL": ("embedding_model", "context"),
    "EDGE_AGENT_CLOUD_TOKEN": ("token", "cloud"),
}
_CONTROL = re.compile(r"[\x00-\x20\x7f-\x9f]")
_ALIAS = re.compile(r"[A-Za-z0-9._-]{1,64}")
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _typed(source: str, key: str, value: Any, default: Any) -> Any:
    expected = type(default)
    if expected is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(source, key, f"a list of strings (got {value!r})")
        return tuple(value)
    if key == "model.keep_alive" and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # Ollama takes seconds as a number too
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(source, key, f"a value of type {expected.__name__} (got {value!r})")
    if expected in (int, float) and value < 0:
        raise ConfigError(source, key, f"a non-negative number (got {value!r})")
    return value


def _section(source: str, name: str, cls: type, raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(source, name, "a table")
    defaults = cls()
    known = {f.name for f in fields(cls)}
    values = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(source, f"{name}.{key}", f"one of {sorted(known)} (unknown key)")
        values[key] = _typed(source, f"{name}.{key}", value, getattr(defaults, key))
    return replace(defaults, **values)


def parse_config(data: Mapping[str, Any], source: str = "<config>") -> Config:
    """Build a Config from a parsed TOML mapping, validating every key."""
    cfg = Config(data_dir=default_data_dir())
    values: dict[str, Any] = {}
    for key, raw in data.items():
        if key in _SECTIONS:
            values[key] = _section(source, key, _SECTIONS[key], raw)
        elif key in ("data_dir", "policy", "log_level"):
            values[key] = _typed(source, key, raw, "")
        else:
            raise ConfigError(source, key, f"one of {sorted([*_SECTIONS, 'data_dir', 'policy', 'log_level'])} (unknown key)")
    cfg = replace(cfg, **values)
    return _check(cfg, source)


def _check(cfg: Config, source: str) -> Config:
    if cfg.log_level.upper() not in _LEVELS:
        raise ConfigError(source, "log_level", f"one of {list(_LEVELS)} (got {cfg.log_level!r})")
    _loopback(source, "server.listen", cfg.server.listen, "EDGE_AGENT_LISTEN")
    _loopback(source, "server.metrics", cfg.server.metrics, "EDGE_AGENT_METRICS")
    listen = cfg.http.listen
    if listen.startswith("unix:") and not listen.removeprefix("unix:").strip():
        raise ConfigError(source, "http.listen", "unix:PATH with a path (got 'unix:'; also set by EDGE_AGENT_HTTP)")
    if listen and listen != "unix" and not listen.startswith("unix:"):
        _loopback(source, "http.listen", listen, "EDGE_AGENT_HTTP", also="'unix', 'unix:PATH' or ")
    if _CONTROL.search(cfg.http.token):
        raise ConfigError(source, "http.token", "printable characters, no spaces (also set by EDGE_AGENT_HTTP_TOKEN)")
    _check_doors(cfg, source)
    if cfg.limits.default_max_tokens > cfg.limits.max_tokens:
        raise ConfigError(source, "limits.default_max_tokens", "at most limits.max_tokens")
    if bool(cfg.cloud.cert_file) != bool(cfg.cloud.key_file):
        raise ConfigError(source, "cloud.cert_file", "cert_file and key_file set together (mTLS)")
    if cfg.cloud.cert_file and not cfg.cloud.ca_file:
        raise ConfigError(source, "cloud.ca_file", "a CA file when a client certificate is set")
    if not 1 <= cfg.cloud.max_attempts <= 5:
        raise ConfigError(source, "cloud.max_attempts", f"an integer in 1..5 (got {cfg.cloud.max_attempts})")
    if cfg.cloud.breaker_failures < 1:
        raise ConfigError(source, "cloud.breaker_failures", "at least 1")
    if cfg.server.queue_depth < 1:
        raise ConfigError(source, "server.queue_depth", "at least 1")
    if not 1 <= cfg.server.parallel <= 8:
        raise ConfigError(source, "server.parallel", "an integer from 1 to 8 (also set by EDGE_AGENT_PARALLEL)")
    if not (isinstance(cfg.server.kv_budget_mib, (int, float)) and cfg.server.kv_budget_mib >= 0):
        raise ConfigError(source, "server.kv_budget_mib", f"a size in MiB >= 0 (0: unchecked; got {cfg.server.kv_budget_mib!r})")
    if cfg.server.per_app < 0:
        raise ConfigError(source, "server.per_app", "0 (parallel - 1) or a positive integer")
    for key in ("kv_type_k", "kv_type_v"):
        if getattr(cfg.model, key) not in ("f16", "q8_0", "q4_0"):
            raise ConfigError(source, f"model.{key}", f"one of f16, q8_0, q4_0 (got {getattr(cfg.model, key)!r})")
    if cfg.context.retrieval not in ("auto", "bm25", "hybrid"):
        raise ConfigError(source, "context.retrieval", f"one of auto, bm25, hybrid (got {cfg.context.retrieval!r}; also set by EDGE_AGENT_RETRIEVAL)")
    if cfg.context.embedding_model and not Path(cfg.context.embedding_model).expanduser().is_file():
        raise ConfigError(source, "context.embedding_model", f"a GGUF file (not found: {cfg.context.embedding_model!r}; also set by EDGE_AGENT_EMBEDDING_MODEL)")
    if cfg.model.flash_attn not in ("auto", "on", "off"):
        raise ConfigError(source, "model.flash_attn", f"one of auto, on, off (got {cfg.model.flash_attn!r})")
    if cfg.model.kv_type_v != "f16" and cfg.model.flash_attn == "off":
        raise ConfigError(source, "model.kv_type_v", f"f16 while model.flash_attn = off (a quantized V cache needs flash attention; got {cfg.model.kv_type_v!r})")
    if cfg.model.alias and not _ALIAS.fullmatch(cfg.model.alias):
        raise ConfigError(source, "model.alias", f"1..64 letters, digits, '.', '_', '-' (got {cfg.model.alias!r}; also set by EDGE_AGENT_MODEL_ALIAS)")
    try:
        parse_keep_alive(cfg.model.keep_alive)
    except ValueError:
        raise ConfigError(source, "model.keep_alive", f"{DURATION_RULE} (got {cfg.model.keep_alive!r}; also set by EDGE_AGENT_KEEP_ALIVE)") from None
    return replace(cfg, log_level=cfg.log_level.upper())


_HOST = r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*|\[[0-9a-f:.]+\])"
_PORT = r"(?::[0-9]{1,5})?"


def _check_doors(cfg: Config, source: str) -> None:
    """Connection bounds and the HTTP door's Host and Origin allow-lists."""
    for section, key, low in (("server", "max_connections", 1), ("server", "max_streams", 1),
                              ("http", "max_connections", 1)):
        value = getattr(getattr(cfg, section), key)
        if value < low:
            raise ConfigError(source, f"{section}.{key}", f"at least {low} (got {value})")
    for section, key in (("server", "idle_timeout_s"), ("server", "handshake_timeout_s"), ("http", "read_timeout_s")):
        value = getattr(getattr(cfg, section), key)
        if not 0.1 <= value <= 86400:
            raise ConfigError(source, f"{section}.{key}", f"seconds in 0.1..86400 (got {value})")
    for host in cfg.http.allowed_hosts:
        if not re.fullmatch(_HOST + _PORT, host.lower()):
            raise ConfigError(source, "http.allowed_hosts", f"host names such as 'myhost.local' or 'myhost.local:8080', no wildcard (got {host!r}; also set by EDGE_AGENT_HTTP_HOSTS)")
    for origin in cfg.http.allowed_origins:
        if not re.fullmatch(r"https?://" + _HOST + _PORT, origin.lower()):
            raise ConfigError(source, "http.allowed_origins", f"origins such as 'http://localhost:3000': scheme http or https, a host, an optional port, no path, no wildcard (got {origin!r}; also set by EDGE_AGENT_HTTP_ORIGINS)")


def _loopback(source: str, key: str, value: str, env: str, also: str = "") -> None:
    """A loopback TCP address "host:port" (or nothing)."""
    if not value:
        return
    host, _, port = value.rpartition(":")
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise ConfigError(source, key, f"{also}a loopback address host:port with an IPv6 host in brackets, e.g. [::1]:50051 (got {value!r}; also set by {env})")
    if host.strip("[]") not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError(source, key, f"{also}a loopback address host:port, host 127.0.0.1, localhost or [::1] (got {value!r}; also set by {env})")
    if not (port.isascii() and port.isdigit() and int(port) <= 65535):
        raise ConfigError(source, key, f"{also}a loopback address host:port, port in ASCII digits 1..65535 or 0 for a free one (got {value!r}; also set by {env})")


def load_config(path: str | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load defaults <- TOML file <- environment. No file is needed for the defaults."""
    env = os.environ if env is None else env
    path = path or env.get("EDGE_AGENT_CONFIG") or None
    data: dict[str, Any] = {}
    source = path or "<defaults>"
    if path:
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(path, "<file>", "an existing TOML file") from None
        except IsADirectoryError:
            raise ConfigError(path, "<file>", "a TOML file (this is a directory)") from None
        except PermissionError:
            raise ConfigError(path, "<file>", "a TOML file this user may read (permission denied)") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(path, "<file>", f"UTF-8 text (byte {exc.start} is not valid UTF-8)") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(path, "<file>", f"valid TOML ({exc})") from None
    cfg = parse_config(data, source)
    for var, (key, section) in _ENV.items():
        if var not in env:
            continue
        if section is None:
            top: dict[str, Any] = {key: env[var]}
            cfg = replace(cfg, **top)
        else:
            value: Any = env[var]
            current = getattr(getattr(cfg, section), key)
            if isinstance(current, tuple):  # a list: comma-separated
                value = tuple(v.strip() for v in value.split(",") if v.strip())
            elif isinstance(current, int) and not isinstance(current, bool):
                if not value.strip().isdigit():
                    raise ConfigError(f"environment ({source})", f"{section}.{key}", f"an integer (got {value!r} from {var})")
                value = int(value)
            updated: Any = replace(getattr(cfg, section), **{key: value})
            cfg = replace(cfg, **{section: updated})
    return _check(cfg, f"environment ({source})")
