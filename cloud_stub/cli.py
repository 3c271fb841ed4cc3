"""`cloud-stub serve`: run the cloud side on this machine.

Prints ``listening on HOST:PORT`` on stdout once it serves, so scripts can use port 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cloud-stub", description="The cloud side of edgecloud: a CloudInference gRPC service.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve CloudInference over gRPC")
    s.add_argument("--listen", default=os.environ.get("CLOUD_STUB_LISTEN", "127.0.0.1:50061"), help="host:port (port 0 picks a free one)")
    s.add_argument("--backend", choices=("llama", "openai"), default="llama", help="run a GGUF model here, or forward to an OpenAI-compatible server")
    s.add_argument("--model", default=os.environ.get("CLOUD_STUB_MODEL", ""), help="GGUF path for the llama backend (default: the shipped model); model name for openai")
    s.add_argument("--openai-url", default="", help="base URL of the OpenAI-compatible server, e.g. http://127.0.0.1:8000")
    s.add_argument("--openai-key-env", default="OPENAI_API_KEY", help="environment variable holding the upstream API key")
    s.add_argument("--token-file", default="", help="file holding the bearer token clients must send")
    s.add_argument("--price-in", type=float, default=0.0005, help="price per 1k prompt tokens")
    s.add_argument("--price-out", type=float, default=0.0015, help="price per 1k generated tokens")
    s.add_argument("--max-tokens-limit", type=int, default=4096)
    s.add_argument("--n-ctx", type=int, default=4096)
    s.add_argument("--threads", type=int, default=0, help="llama backend threads (0: all cores)")
    s.add_argument("--log-level", default="INFO")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from .backends import Backend, LlamaBackend, OpenAIBackend
    from .server import StubSettings, run_server

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
    )

    async def run() -> None:
        backend: Backend
        if args.backend == "openai":
            if not args.openai_url:
                raise SystemExit("cloud-stub: --openai-url is required with --backend openai")
            ob = OpenAIBackend(args.openai_url, model=args.model, api_key=os.environ.get(args.openai_key_env, ""), context_length=args.n_ctx)
            await ob.discover_model()
            backend = ob
        else:
            from edge_agent.models import resolve_model_path

            path = resolve_model_path(args.model or None, source="--model")
            backend = LlamaBackend(path, n_ctx=args.n_ctx, n_threads=args.threads or None)
        host = args.listen.rsplit(":", 1)[0]

        def ready(port: int) -> None:
            print(f"listening on {host}:{port}", flush=True)

        await run_server(backend, settings, args.listen, ready=ready)

    try:
        asyncio.run(run())
    except Exception as exc:  # noqa: BLE001 - a clear message instead of a traceback
        print(f"cloud-stub: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
