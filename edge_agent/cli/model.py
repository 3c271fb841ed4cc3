"""``edge-agent model``: the model directory (list, add, pull, use, rm, show).

``use`` takes effect when the daemon next starts (a running daemon keeps the model it
loaded); ``rm`` refuses the model in use, whether chosen or held by a running daemon,
and the shipped model, which is always available offline.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from common.errors import DomainError
from edge_agent.config import Config
from edge_agent.modeldir import gguf
from edge_agent.modeldir.catalog import Catalog, Entry


def register(subparsers: Any) -> None:
    model = subparsers.add_parser("model", help="manage the local models (list, add, pull, use, rm, show)")
    sub = model.add_subparsers(dest="model_command", required=True, metavar="COMMAND")
    ls = sub.add_parser("list", help="models in the model directory; * marks the one in use")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=_cmd_list)
    add = sub.add_parser("add", help="copy a GGUF file into the model directory")
    add.add_argument("path", type=Path, help="the GGUF file to copy")
    add.add_argument("--name", default=None, help="its name (default: the file name without .gguf)")
    add.set_defaults(func=_cmd_add)
    pull = sub.add_parser("pull", help="download a GGUF into the model directory (resumable, checksum verified)")
    pull.add_argument("ref", metavar="REF", help="https://host/file.gguf (with --sha256), or hf:owner/repo/file.gguf[@revision] "
                      "from $HF_ENDPOINT (default https://huggingface.co)")
    pull.add_argument("--sha256", default=None, help="the file's SHA-256 (required for a URL; a Hub file's comes from the Hub)")
    pull.add_argument("--name", default=None, help="its name (default: the file name without .gguf)")
    pull.add_argument("--quiet", action="store_true", help="no progress bar")
    pull.set_defaults(func=_cmd_pull)
    use = sub.add_parser("use", help="run this model: the running daemon switches now (requests drain, then swap), "
                                     "and it is the model from the next start")
    use.add_argument("name", help="a name from `edge-agent model list`")
    use.add_argument("--next-start", action="store_true", help="only from the daemon's next start; leave a running one as it is")
    use.add_argument("--address", default="", help="the running daemon's address (default: the configured unix socket)")
    use.set_defaults(func=_cmd_use)
    rm = sub.add_parser("rm", help="remove a model (not the one in use, not the shipped one)")
    rm.add_argument("name", help="a name from `edge-agent model list`")
    rm.set_defaults(func=_cmd_rm)
    show = sub.add_parser("show", help="a model's size, quantization, context, template, buffer types")
    show.add_argument("name", help="a name from `edge-agent model list`")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=_cmd_show)


def _quiet() -> None:
    """llama.cpp's loader warnings (about the model's own metadata) stay out of the tables."""
    logging.getLogger("llama.cpp").setLevel(logging.ERROR)


def _row(e: Entry, info: gguf.ModelInfo, active: str, running: str | None) -> dict[str, Any]:
    return {
        "name": e.name,
        "in_use": e.name == active,  # the model from the daemon's next start
        "running": e.name == running,  # the model a running daemon serves now
        "shipped": e.shipped,
        "path": str(info.path),
        "size_mib": round(info.size_bytes / 2**20, 1),
        "architecture": info.architecture,
        "parameters": info.size_label,
        "quantization": info.quantization,
        "context_length": info.context_length,
        "chat_template": info.chat_template,
        **({"buffer_types_mib": info.buffer_types_mib} if info.buffer_types_mib is not None else {}),
    }


def _cmd_list(args: argparse.Namespace, cfg: Config) -> int:
    _quiet()
    cat = Catalog(cfg)
    active = cat.active().name
    running = _running_model(cfg)
    rows = [_row(e, gguf.read(e.file()), active, running) for e in cat.entries()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'':2}{'NAME':32} {'SIZE':>9}  {'QUANTIZATION':16} {'CONTEXT':>8}  TEMPLATE  RUNNING")
    for r in rows:
        mark = "* " if r["in_use"] else "  "
        name = r["name"] + (" (shipped)" if r["shipped"] else "")
        print(f"{mark}{name:32} {r['size_mib']:>7.1f}MB  {r['quantization']:16} {r['context_length']:>8}  "
              f"{'yes' if r['chat_template'] else 'no':8}  {'yes' if r['running'] else ''}")
    if running is None:
        print("(* = the model from the next start; no daemon is running)")
    else:
        print(f"(* = the model from the next start; the running daemon serves {running})")
    return 0


def _running_model(cfg: Config) -> str | None:
    """The model a daemon on the configured socket serves now (None: none answers)."""
    if not cfg.socket_path.exists():
        return None
    import grpc
    from edgecloud.v1 import edge_agent_pb2 as pb
    from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc

    try:
        with grpc.insecure_channel(f"unix:{cfg.socket_path}") as ch:
            return str(pb_grpc.EdgeAgentStub(ch).GetStats(pb.GetStatsRequest(), timeout=5).model.name) or None
    except grpc.RpcError:
        return None


def _cmd_add(args: argparse.Namespace, cfg: Config) -> int:
    _quiet()
    e = Catalog(cfg).add(args.path.expanduser(), args.name)
    print(f"added {e.name} ({e.path}); run it with: edge-agent model use {e.name}")
    return 0


def _cmd_pull(args: argparse.Namespace, cfg: Config) -> int:
    from edge_agent.modeldir.pull import pull

    _quiet()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the progress bar says what happens
    e = pull(Catalog(cfg), args.ref, name=args.name, sha256=args.sha256, progress=not args.quiet)
    print(f"pulled {e.name} ({e.path}, SHA-256 verified); run it with: edge-agent model use {e.name}")
    return 0


def _cmd_use(args: argparse.Namespace, cfg: Config) -> int:
    e = Catalog(cfg).use(args.name)
    if not args.next_start and _switch_running(args, cfg, e.name):
        return 0
    print(f"using {e.name} from the daemon's next start")
    if cfg.model.path:
        print(f"note: [model] path / EDGE_AGENT_MODEL = {cfg.model.path!r} is set and takes precedence")
    return 0


def _switch_running(args: argparse.Namespace, cfg: Config, name: str) -> bool:
    """Ask a running daemon to switch to ``name`` (False: none is listening)."""
    import grpc
    from edgecloud.v1 import edge_agent_pb2 as pb
    from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc

    from edge_agent.cli.main import _channel

    if not getattr(args, "address", None) and not cfg.socket_path.exists():
        return False
    try:
        with _channel(args, cfg) as ch:
            r = pb_grpc.EdgeAgentStub(ch).UseModel(pb.UseModelRequest(name=name), timeout=600)
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.UNAVAILABLE:  # no daemon there (a stale socket)
            return False
        raise DomainError(f"the running daemon did not switch: {exc.details()}") from None
    print(f"the running daemon switched from {r.previous} to {r.model} in {r.seconds:.1f} s; "
          f"{name} is also the model from its next start")
    return True


def _cmd_rm(args: argparse.Namespace, cfg: Config) -> int:
    e = Catalog(cfg).remove(args.name)
    print(f"removed {e.name} ({e.path})")
    return 0


def _cmd_show(args: argparse.Namespace, cfg: Config) -> int:
    _quiet()
    cat = Catalog(cfg)
    e = cat.get(args.name)
    r = _row(e, gguf.read(e.file(), weights=True), cat.active().name, _running_model(cfg))
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    for key, value in r.items():
        if key == "buffer_types_mib":
            value = ", ".join(f"{k} {v:.0f} MiB" for k, v in value.items()) or "?"
        print(f"{key:16} {value}")
    return 0
