"""`edge-agent`: serve the daemon, ask it things, manage context, policy and audit.

Logging is configured here once; nothing is configured at import time.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import Any

from common.errors import DomainError
from edge_agent.cli import context as context_commands
from edge_agent.cli import model as model_commands
from edge_agent.cli import policy as routing_commands
from edge_agent.cli import token as token_commands
from edge_agent.config import Config, load_config

EXIT_USAGE = 2


def _connect_target(args: argparse.Namespace, cfg: Config) -> str:
    if args.address:
        return args.address
    return f"unix:{cfg.socket_path}"


def _channel(args: argparse.Namespace, cfg: Config) -> Any:
    """A channel to the daemon; over TCP it sends the bearer token from the token file."""
    import grpc

    from common.rpc import with_bearer
    from edge_agent.transport.auth import read_token

    target = _connect_target(args, cfg)
    channel = grpc.insecure_channel(target)
    if target.startswith("unix:"):
        return channel
    return with_bearer(channel, read_token(cfg.token_path))


# serve's options: (flag, environment override it stands for, help).
_SERVE_OPTIONS = (
    ("--listen", "EDGE_AGENT_LISTEN", "also listen on this loopback TCP host:port (server.listen; token required)"),
    ("--socket", "EDGE_AGENT_SOCKET", "unix socket path (server.socket)"),
    ("--http", "EDGE_AGENT_HTTP", "OpenAI-compatible HTTP door: unix, unix:PATH or a loopback host:port (http.listen)"),
    ("--metrics", "EDGE_AGENT_METRICS", "Prometheus /metrics on a loopback host:port (server.metrics)"),
    ("--model", "EDGE_AGENT_MODEL", "GGUF file or model name (model.path)"),
    ("--keep-alive", "EDGE_AGENT_KEEP_ALIVE", "idle time before the model is freed, e.g. 5m, 0, -1 (model.keep_alive)"),
    ("--policy", "EDGE_AGENT_POLICY", "routing policy TOML file (policy)"),
    ("--cloud", "EDGE_AGENT_CLOUD", "cloud-stub host:port; '' for none (cloud.address)"),
    ("--log-level", "EDGE_AGENT_LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR (log_level)"),
)


def _serve_config(args: argparse.Namespace, cfg: Config) -> Config:
    """The configuration with serve's options applied (as the environment overrides
    they stand for, so they are checked the same way and win the same way)."""
    env = dict(os.environ)
    for flag, var, _ in _SERVE_OPTIONS:
        value = getattr(args, flag.removeprefix("--").replace("-", "_"), None)
        if value is not None:
            env[var] = value
    cfg = load_config(args.config, env=env)
    from dataclasses import replace

    if args.threads is not None:
        cfg = replace(cfg, model=replace(cfg.model, n_threads=args.threads))
    if args.no_calibrate:
        cfg = replace(cfg, model=replace(cfg.model, calibrate=False))
    return cfg


def _cmd_serve(args: argparse.Namespace, cfg: Config) -> int:
    from edge_agent.daemon.lifecycle import Bound, serve
    from edge_agent.daemon.wiring import open_service, switch_model

    cfg = _serve_config(args, cfg)
    logging.getLogger().setLevel(cfg.log_level)

    def ready(bound: Bound) -> None:
        where = f"unix:{bound.socket}" + (f" and 127.0.0.1:{bound.tcp_port}" if bound.tcp_port else "")
        metrics = f"; metrics on http://127.0.0.1:{bound.metrics_port}/metrics" if bound.metrics_port else ""
        http = f"; openai on {bound.http}" if bound.http else ""
        print(f"edge-agent ready on {where}{metrics}{http}", flush=True)

    asyncio.run(serve(cfg, lambda: open_service(cfg), ready=ready,
                      switch_model=lambda service, name: switch_model(cfg, service, name)))
    return 0


def _request(args: argparse.Namespace) -> Any:
    from edgecloud.v1 import common_pb2
    from edgecloud.v1 import edge_agent_pb2 as pb

    pref = {"auto": pb.ROUTE_PREFERENCE_AUTO, "local": pb.ROUTE_PREFERENCE_LOCAL_ONLY, "cloud": pb.ROUTE_PREFERENCE_CLOUD_PREFERRED}
    params = common_pb2.GenerationParams(
        max_tokens=args.max_tokens, temperature=args.temperature, stop=args.stop or []
    )
    if args.seed is not None:
        params.seed = args.seed
    return pb.GenerateRequest(
        prompt=args.prompt,
        params=params,
        routing=pb.Routing(
            preference=pref[args.route],
            deadline_ms=args.deadline_ms,
            max_cost=args.max_cost,
            personal=args.personal,
            labels=args.label or [],
        ),
        use_context=not args.no_context,
    )


def _describe(done: Any) -> str:
    from edgecloud.v1 import edge_agent_pb2 as pb

    r, u = done.route, done.usage
    target = pb.RouteTarget.Name(r.target).removeprefix("ROUTE_TARGET_").lower()
    lines = [f"route: {target}  ({', '.join(r.rules_fired) or 'no rule'})", f"why:   {r.explanation}"]
    if r.fallback:
        lines.append(f"fallback: {r.fallback_reason}")
    if r.context_item_ids:
        lines.append(f"context: {len(r.context_item_ids)} item(s) used")
    speed = f"{u.tokens_per_s:.1f} tok/s"
    if u.drafted_tokens:
        speed += f", {u.accepted_tokens}/{u.drafted_tokens} drafted tokens accepted"
    lines.append(
        f"tokens: {u.prompt_tokens} in, {u.completion_tokens} out; ttft {u.ttft_ms:.0f} ms; {speed}; "
        f"total {u.total_ms:.0f} ms; finish {done.finish_reason}"
    )
    return "\n".join(lines)


def _target(value: int) -> str:
    from edgecloud.v1 import edge_agent_pb2 as pb

    return pb.RouteTarget.Name(value).removeprefix("ROUTE_TARGET_").lower()


def explain_text(d: Any) -> str:
    """A ``RouteDecision`` as ``policy explain`` prints one: route, why, rules, options."""
    lines = [
        f"route: {_target(d.target)}",
        f"why:   {d.explanation}",
        f"rules: {', '.join(d.rules_fired) or '-'}",
        f"pii:   {', '.join(d.pii_kinds) or 'none detected'}",
    ]
    if d.context_item_ids:
        lines.append(f"context: {len(d.context_item_ids)} item(s): {', '.join(d.context_item_ids)}")
    if d.options:
        lines.append("options:")
    for o in d.options:
        state = "allowed" if o.allowed else "blocked"
        note = f"  ({o.note})" if o.note else ""
        lines.append(f"  {_target(o.target):<15}{o.estimated_latency_ms:>9.0f} ms {o.estimated_cost:>10.6f}  {state}{note}")
    return "\n".join(lines)


def _cmd_ask(args: argparse.Namespace, cfg: Config) -> int:
    from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc

    with _channel(args, cfg) as ch:
        stub = pb_grpc.EdgeAgentStub(ch)
        timeout = args.timeout
        if args.explain:
            print(explain_text(stub.ExplainRoute(_request(args), timeout=timeout)))
            return 0
        done = None
        for msg in stub.Generate(_request(args), timeout=timeout):
            if msg.HasField("done"):
                done = msg.done
            else:
                print(msg.delta, end="", flush=True)
        print()
        if done is not None and not args.quiet:
            print("\n" + _describe(done), file=sys.stderr)
    return 0


def _cmd_stats(args: argparse.Namespace, cfg: Config) -> int:
    from edgecloud.v1 import edge_agent_pb2 as pb
    from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc

    with _channel(args, cfg) as ch:
        s = pb_grpc.EdgeAgentStub(ch).GetStats(pb.GetStatsRequest(), timeout=args.timeout)
    if args.json:
        import json

        from google.protobuf.json_format import MessageToDict

        print(json.dumps(MessageToDict(s, preserving_proto_field_name=True, always_print_fields_with_no_presence=True), indent=2))
        return 0
    print(f"requests by route: {dict(s.requests_by_route) or '{}'}   errors: {s.errors}   fallbacks: {s.fallbacks}")
    print(f"ttft p50/p99: {s.ttft_p50_ms:.0f}/{s.ttft_p99_ms:.0f} ms   local tok/s p50: {s.local_tokens_per_s_p50:.1f}")
    print(f"draft acceptance: {s.acceptance_rate:.0%}   cloud spend: {s.cloud_spend:.6f}   circuit: {s.cloud_circuit}")
    print(f"context items: {s.context_items}")
    if s.energy_source:
        print(f"local energy: {s.local_energy_j:.1f} J, {s.local_tokens_per_j_p50:.2f} tokens/J p50 ({s.energy_source})")
    m = s.model
    if m.name:
        keep = "forever" if m.keep_alive_s < 0 else f"{m.keep_alive_s:g} s"
        expires = f", freed in {m.expires_in_s:.0f} s" if m.expires_in_s >= 0 else ""
        print(f"model: {m.name} {m.state} (keep_alive {keep}{expires}; {m.loads} reloads, {m.unloads} unloads)")
    r = s.runtime
    if r.build_variant:
        bufs = ", ".join(f"{k} {v:.0f} MiB" for k, v in r.buffer_types_mib.items())
        cost = " ".join(f"{k + 1}:{c:.2f}" for k, c in enumerate(r.verify_cost) if k + 1 in (1, 2, 4, 8, 16))
        print(f"runtime: build {r.build_variant}, weights {bufs}, {r.threads} threads "
              f"({r.thread_switches} switches); plain step {r.plain_step_ms:.1f} ms; "
              f"verify cost x plain for k drafted {cost}")
    return 0


def _cmd_ps(args: argparse.Namespace, cfg: Config) -> int:
    import json

    from edgecloud.v1 import edge_agent_pb2 as pb
    from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc
    from google.protobuf.json_format import MessageToDict

    from edge_agent.transport.status import status_body

    with _channel(args, cfg) as ch:
        s = pb_grpc.EdgeAgentStub(ch).GetStats(pb.GetStatsRequest(), timeout=args.timeout)
    model = MessageToDict(s.model, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    runtime = MessageToDict(s.runtime, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    st = status_body({k: (int(v) if isinstance(v, str) and v.isdigit() else v) for k, v in model.items()}, runtime)
    if args.json:
        print(json.dumps(st, indent=2))
        return 0
    print(ps_text(st))
    return 0


def ps_text(st: dict[str, Any]) -> str:
    """``edge-agent ps``: one header line and one line for the model, as ``ollama ps``."""
    mem = st["memory_mib"]
    keep = "forever" if st["keep_alive_s"] is None else f"{st['keep_alive_s']:g} s"
    if st["expires_in_s"] is not None:
        expires = f"in {st['expires_in_s']:.0f} s"
    else:
        expires = "never" if st["keep_alive_s"] is None else "-"
    r = st["requests"]
    head = (f"{'MODEL':<28} {'STATE':<9} {'WEIGHTS':>9} {'KV':>9} {'RESIDENT':>9} {'KEEP_ALIVE':>10} {'EXPIRES':>10} "
            f"{'ACTIVE':>6} {'WAITING':>9}")
    row = (f"{st['model'] or '-':<28} {st['status']:<9} {mem['weights']:>5.0f} MiB {mem['kv_cache']:>5.0f} MiB "
           f"{mem['resident']:>5.0f} MiB "
           f"{keep:>10} {expires:>10} {r['active']:>6} {r['waiting']:>4}/{r['queue_depth']:<4}")
    return head + "\n" + row


def _cmd_doctor(args: argparse.Namespace, cfg: Config) -> int:
    from edge_agent.cli import doctor
    from edge_agent.modeldir.catalog import Catalog

    threads = cfg.model.n_threads or os.cpu_count() or 1
    return doctor.run(args, Catalog(cfg).active().file(), threads)


def _client_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", default="", help="daemon address (default: the configured unix socket; "
                   "over TCP the token file's token is sent)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds before giving up")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edge-agent", description="On-device LLM daemon with policy routing to a cloud model.")
    p.add_argument("--config", default=None, help="TOML config file (default: $EDGE_AGENT_CONFIG or built-in defaults)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("serve", help="run the daemon", description="Run the daemon. Each option overrides the "
                       "config file key named in its help (and the environment variable for it).")
    for flag, var, text in _SERVE_OPTIONS:
        s.add_argument(flag, default=None, help=f"{text}; also {var}")
    s.add_argument("--threads", type=int, default=None, help="decode threads, 0 for all cores (model.n_threads)")
    s.add_argument("--no-calibrate", action="store_true", help="skip measuring the verification cost curve at start "
                   "(model.calibrate = false)")
    s.set_defaults(func=_cmd_serve)

    a = sub.add_parser("ask", help="ask the running daemon; streams the answer, then the route and figures")
    a.add_argument("prompt", help="the question")
    a.add_argument("--max-tokens", type=int, default=0, help="longest answer in tokens (default 0: the daemon's limits.default_max_tokens)")
    a.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (default 0: greedy)")
    a.add_argument("--seed", type=int, default=None, help="sampling seed, for repeatable answers at a temperature above 0")
    a.add_argument("--stop", action="append", help="stop sequence (repeatable)")
    a.add_argument("--route", choices=("auto", "local", "cloud"), default="auto", help="routing preference")
    a.add_argument("--deadline-ms", type=int, default=0, help="time the whole answer may take (default 0: the policy's)")
    a.add_argument("--max-cost", type=float, default=0.0, help="most the answer may cost in the cloud (default 0: no cap)")
    a.add_argument("--personal", action="store_true", help="mark the prompt personal (stays on the device)")
    a.add_argument("--label", action="append", help="request label for policy rules (repeatable)")
    a.add_argument("--no-context", action="store_true", help="do not pull personal context into the prompt")
    a.add_argument("--explain", action="store_true", help="only show the route that would be taken")
    a.add_argument("--quiet", action="store_true", help="print only the answer")
    _client_args(a)
    a.set_defaults(func=_cmd_ask)

    st = sub.add_parser("stats", help="counters and percentiles of the running daemon")
    st.add_argument("--json", action="store_true", help="print JSON")
    _client_args(st)
    st.set_defaults(func=_cmd_stats)

    ps = sub.add_parser("ps", help="what is running: the model, its memory, keep-alive and expiry, the queue")
    ps.add_argument("--json", action="store_true", help="print JSON (the shape of GET /v1/status)")
    _client_args(ps)
    ps.set_defaults(func=_cmd_ps)

    from edge_agent.cli import doctor

    doctor.register(sub).set_defaults(func=_cmd_doctor)
    context_commands.register(sub)
    model_commands.register(sub)
    routing_commands.register(sub)
    token_commands.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
    except DomainError as exc:
        print(f"edge-agent: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    os.umask(0o077)  # private state: every file this process creates is 0600, each directory 0700
    from common.logfmt import EscapingFormatter
    from common.logrepeat import RepeatFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(EscapingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    repeats = RepeatFilter.install(handler)  # a flood of one message is collapsed, with a count
    logging.basicConfig(level=cfg.log_level, handlers=[handler])
    # llama.cpp's own log lines pass through this logger's level (ERROR unless debugging).
    logging.getLogger("llama-cpp-python").setLevel(logging.DEBUG if cfg.log_level == "DEBUG" else logging.ERROR)
    try:
        return int(args.func(args, cfg))  # every command: (arguments, configuration)
    except DomainError as exc:
        print(f"edge-agent: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        import grpc

        if isinstance(exc, grpc.Call):
            code = exc.code().name
            print(f"edge-agent: {code}: {exc.details()}", file=sys.stderr)
            if code == "UNAVAILABLE":
                print(f"edge-agent: is the daemon running? (edge-agent serve; socket {load_config(args.config).socket_path})", file=sys.stderr)
            return 1
        if os.environ.get("EDGE_AGENT_DEBUG"):
            raise
        print(f"edge-agent: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        repeats.flush()  # what was dropped since the last summary


if __name__ == "__main__":
    sys.exit(main())
