"""`cloud-stub serve`: run the cloud side on this machine.

Prints ``listening on HOST:PORT`` as its first stdout line once it serves, so scripts
can use port 0. Options: the backend (``llama`` or ``openai``), bearer token, price and
limits announced by ``Info``, TLS/mTLS, and fault injection for tests and demos.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.logfmt import EscapingFormatter


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cloud-stub", description="The cloud side of edgecloud: a CloudInference gRPC service.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve CloudInference over gRPC")
    s.add_argument("--listen", default=os.environ.get("CLOUD_STUB_LISTEN", "127.0.0.1:50061"), help="host:port (port 0 picks a free one)")
    s.add_argument("--backend", choices=("llama", "openai"), default="llama", help="run a GGUF model here, or forward to an OpenAI-compatible server")
    s.add_argument("--model", default=os.environ.get("CLOUD_STUB_MODEL", ""), help="GGUF path for the llama backend (default: the shipped model); model name for openai")
    s.add_argument("--openai-url", default="", help="base URL of the OpenAI-compatible server, e.g. http://127.0.0.1:8000")
    s.add_argument("--openai-key-env", default="OPENAI_API_KEY", help="environment variable holding the upstream API key")
    s.add_argument("--openai-api", choices=("completions", "chat"), default="completions", help="upstream endpoint: /v1/completions or /v1/chat/completions")
    s.add_argument("--openai-timeout", type=_positive_float, default=60.0, help="seconds to wait for upstream data (read timeout)")
    s.add_argument("--token-file", default="", help="file holding the bearer token clients must send")
    s.add_argument("--price-in", type=float, default=0.0005, help="price per 1k prompt tokens")
    s.add_argument("--price-out", type=float, default=0.0015, help="price per 1k generated tokens")
    s.add_argument("--max-tokens-limit", type=_positive_int, default=4096, help="largest params.max_tokens accepted (OUT_OF_RANGE beyond)")
    s.add_argument("--max-prompt-bytes", type=_positive_int, default=256 * 1024, help="largest prompt in UTF-8 bytes (OUT_OF_RANGE beyond)")
    t = s.add_argument_group("TLS", "TLS with --tls-cert/--tls-key; mutual TLS when --tls-client-ca is given too")
    t.add_argument("--tls-cert", default="", metavar="FILE", help="server certificate chain (PEM)")
    t.add_argument("--tls-key", default="", metavar="FILE", help="server private key (PEM)")
    t.add_argument("--tls-client-ca", default="", metavar="FILE", help="CA bundle (PEM) that client certificates must chain to; requires client certificates")
    f = s.add_argument_group("fault injection", "for tests and demos; all off by default")
    f.add_argument("--fault-latency-ms", type=_non_negative_float, default=0.0, metavar="N", help="added latency before the first token")
    f.add_argument("--fault-error-rate", type=_probability, default=0.0, metavar="P", help="fraction of Generate calls answered with UNAVAILABLE")
    f.add_argument("--fault-drop-after", type=_non_negative_int, default=None, metavar="N", help="abort the stream with UNAVAILABLE after N text deltas")
    f.add_argument("--fault-seed", type=int, default=None, metavar="N", help="seed for the error-rate draws (reproducible runs)")
    s.add_argument("--n-ctx", type=_non_negative_int, default=0, help="context window in tokens (0: 4096 for llama; for openai what /v1/models reports)")
    s.add_argument("--threads", type=int, default=0, help="llama backend threads (0: all cores)")
    s.add_argument("--log-level", default="INFO")
    return p


def _number(kind: type, ok: Callable[[Any], bool], rule: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {rule}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {rule}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, lambda v: v > 0, "an integer > 0")
_non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
_positive_float = _number(float, lambda v: v > 0, "a number > 0")
_non_negative_float = _number(float, lambda v: v >= 0, "a number >= 0")
_probability = _number(float, lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)  # request ids and upstream text are escaped
    handler.setFormatter(EscapingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=args.log_level.upper(), handlers=[handler])
    from cloud_stub.backends import Backend, LlamaBackend
    from cloud_stub.faults import FaultConfig, with_faults
    from cloud_stub.openai_compat import OpenAIBackend
    from cloud_stub.server import StubSettings, run_server
    from cloud_stub.tls import TLSConfigError, TLSFiles, server_credentials

    token = os.environ.get("CLOUD_STUB_TOKEN", "")
    if args.token_file:
        try:
            token = Path(args.token_file).read_text().strip()
        except OSError as exc:
            print(f"cloud-stub: --token-file: cannot read {args.token_file}: {exc.strerror}", file=sys.stderr)
            return 2
    if not token:
        print("cloud-stub: warning: no bearer token set (--token-file or CLOUD_STUB_TOKEN); every caller is accepted", file=sys.stderr)
    settings = StubSettings(
        token=token,
        price_in_per_1k=args.price_in,
        price_out_per_1k=args.price_out,
        max_tokens_limit=args.max_tokens_limit,
        max_prompt_bytes=args.max_prompt_bytes,
    )
    try:
        credentials = server_credentials(TLSFiles(args.tls_cert, args.tls_key, args.tls_client_ca))
    except TLSConfigError as exc:
        print(f"cloud-stub: {exc}", file=sys.stderr)
        return 2
    if credentials is None and token and not _is_loopback(args.listen):
        print("cloud-stub: warning: the bearer token travels in plaintext; use --tls-cert/--tls-key off loopback", file=sys.stderr)
    faults = FaultConfig(args.fault_latency_ms, args.fault_error_rate, args.fault_drop_after, args.fault_seed)
    if faults.active:
        print(f"cloud-stub: warning: fault injection is on: {faults}", file=sys.stderr)

    async def run() -> None:
        backend: Backend
        if args.backend == "openai":
            if not args.openai_url:
                raise SystemExit("cloud-stub: --openai-url is required with --backend openai")
            ob = OpenAIBackend(
                args.openai_url,
                model=args.model,
                api_key=os.environ.get(args.openai_key_env, ""),
                api=args.openai_api,
                timeout_s=args.openai_timeout,
                context_length=args.n_ctx,
            )
            await ob.discover_model()
            backend = ob
        else:
            from common.model_files import resolve_model_path

            path = resolve_model_path(args.model or None, source="--model")
            backend = LlamaBackend(path, n_ctx=args.n_ctx or 4096, n_threads=args.threads or None)
        host = args.listen.rsplit(":", 1)[0]

        def ready(port: int) -> None:
            print(f"listening on {host}:{port}", flush=True)

        await run_server(with_faults(backend, faults), settings, args.listen, ready=ready, credentials=credentials)

    try:
        asyncio.run(run())
    except Exception as exc:  # noqa: BLE001 - a clear message instead of a traceback
        print(f"cloud-stub: {exc}", file=sys.stderr)
        return 1
    return 0


def _is_loopback(listen: str) -> bool:
    host = listen.rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


if __name__ == "__main__":
    sys.exit(main())
