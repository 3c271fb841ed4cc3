"""``edge-agent token``: the bearer token of the daemon's TCP listeners.

``show`` prints it (making the 0600 file if the daemon has not started yet), ``rotate``
writes a new one; a running daemon takes the new token within a second, and calls with
the old one are refused from then on (no restart). ``path`` prints where it lives.
A fixed ``[http] token`` is not this token and is not rotated here.
"""

from __future__ import annotations

import argparse
from typing import Any

from edge_agent.config import Config
from edge_agent.transport.auth import ensure_token, rotate_token


def register(subparsers: Any) -> None:
    token = subparsers.add_parser("token", help="the bearer token TCP clients need (show, rotate, path)")
    sub = token.add_subparsers(dest="token_command", required=True, metavar="COMMAND")
    sub.add_parser("show", help="print the token (made at the first start)").set_defaults(func=_cmd_show)
    sub.add_parser("rotate", help="replace the token; the running daemon takes it within a second").set_defaults(func=_cmd_rotate)
    sub.add_parser("path", help="print the token file's path").set_defaults(func=_cmd_path)


def _cmd_show(args: argparse.Namespace, cfg: Config) -> int:
    print(ensure_token(cfg.token_path))
    return 0


def _cmd_rotate(args: argparse.Namespace, cfg: Config) -> int:
    rotate_token(cfg.token_path)
    print(f"new token written to {cfg.token_path}; a running daemon refuses the old one within a second "
          "(`edge-agent token show` prints the new one)")
    return 0


def _cmd_path(args: argparse.Namespace, cfg: Config) -> int:
    print(cfg.token_path)
    return 0
