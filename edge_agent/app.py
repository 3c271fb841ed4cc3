"""Wiring: build the daemon's parts from a Config (model, store, ledger, policy, cloud)."""

from __future__ import annotations

import logging
import os

from . import datadir
from .cloud import CircuitBreaker, CloudClient, tls_credentials
from .config import Config
from .runtime import report, selfcheck
from .service import AgentService

log = logging.getLogger(__name__)


def build_service(cfg: Config) -> AgentService:
    """Open the model, store, ledger and policy; blocking (model load), run it off the
    event loop. The cloud link is attached by ``connect_cloud`` on the loop."""
    from .context.store import ContextStore
    from .engine.llama_engine import LlamaEngine
    from .ledger import Ledger
    from .models import resolve_model_path
    from .routing import RoutingState

    datadir.make_private(cfg.data_path)
    routing = RoutingState(cfg.policy, ledger=Ledger(cfg.ledger_path))
    store = ContextStore(cfg.database_path)
    model_path = resolve_model_path(cfg.model.path or None)
    threads = cfg.model.n_threads or os.cpu_count() or 1
    checked = "not run (model.selfcheck = false)"
    if cfg.model.selfcheck:
        check = selfcheck.require(model_path, threads)
        log.info("runtime self-check passed in %.1f s: %s", check.seconds, check.summary)
        checked = f"passed: {check.summary}"
    log.info("loading model %s", model_path)
    engine = LlamaEngine(
        model_path,
        n_ctx=cfg.model.n_ctx,
        n_threads=threads,
        speculative=cfg.model.speculative,
    )
    b = report.build()
    log.info(
        "runtime: llama-cpp-python %s build %s; weights in %s; threads %d",
        b["llama_cpp_python"], b["variant"],
        ", ".join(f"{k} {v:.0f} MiB" for k, v in engine.model.buffer_types.items()) or "?",
        threads,
    )
    if cfg.model.calibrate and cfg.model.speculative:
        cal = engine.calibrate()
        log.info(
            "verification cost (x plain step %.1f ms) for k drafted tokens: %s",
            cal.plain_ms, " ".join(f"{k}:{v:.2f}" for k, v in sorted(cal.points.items()) if k),
        )
    return AgentService(
        engine,
        store,
        routing,
        queue_depth=cfg.server.queue_depth,
        context_token_budget=cfg.limits.context_token_budget,
        runtime={
            "build_variant": str(b["variant"]),
            "llama_cpp_python": str(b["llama_cpp_python"]),
            "system_info": report.system_info(),
            "selfcheck": checked,
        },
    )


def connect_cloud(cfg: Config) -> CloudClient | None:
    """The cloud client for ``cfg`` (None when no cloud is configured); call on the loop."""
    c = cfg.cloud
    if not c.address:
        return None
    creds = tls_credentials(c.ca_file, c.cert_file, c.key_file) if c.ca_file else None
    return CloudClient(
        c.address,
        c.token,
        timeout_s=c.timeout_s,
        breaker=CircuitBreaker(c.breaker_failures, c.breaker_cooldown_s),
        credentials=creds,
        max_attempts=c.max_attempts,
    )
