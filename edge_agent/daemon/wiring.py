"""The composition root: the daemon's parts from a Config (model, store, ledger,
policy, cloud), put together into one ``AgentService``."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from common.errors import ConfigError
from edge_agent import datadir
from edge_agent.adapters.cloud import CircuitBreaker, CloudClient, tls_credentials
from edge_agent.adapters.ledger import Ledger
from edge_agent.config import Config
from edge_agent.context.store import ContextStore
from edge_agent.engine.embedding import EmbeddingModel
from edge_agent.engine.llama_engine import LlamaEngine
from edge_agent.engine.llama_model import KVBudgetExceeded
from edge_agent.modeldir import catalog
from edge_agent.pipeline.indexing import Embedder, LocalEmbedder, ThreadEmbedder, VectorSearch
from edge_agent.pipeline.routing import RoutingState
from edge_agent.pipeline.service import AgentService
from edge_agent.runtime import report, selfcheck

log = logging.getLogger(__name__)
_HELD: dict[Path, int] = {}  # model file -> a descriptor holding a shared lock on it while it runs


@dataclass(frozen=True)
class Parts:
    """What ``load_parts`` opened: the blocking part of building the service."""

    engine: LlamaEngine
    store: ContextStore
    routing: RoutingState
    runtime: dict[str, str]
    embedding: EmbeddingModel | None = None  # [context] embedding_model, when set


async def open_service(cfg: Config) -> AgentService:
    """The service for ``cfg``: the blocking parts (self-check, model load, databases)
    in a thread, then the cloud channel on the loop (a grpc.aio channel belongs to it)."""
    parts = await asyncio.to_thread(load_parts, cfg)
    cloud = connect_cloud(cfg)
    if cloud is not None:
        await cloud.fetch_info(timeout_s=cfg.cloud.connect_timeout_s)
    service = AgentService(
        parts.engine,
        parts.store,
        parts.routing,
        cloud=cloud,
        queue_depth=cfg.server.queue_depth,
        per_app=cfg.server.per_app or max(1, cfg.server.parallel - 1),
        context_token_budget=cfg.limits.context_token_budget,
        runtime=parts.runtime,
        keep_alive_s=cfg.keep_alive_s,
    )
    if cfg.hybrid_retrieval:
        embedder: Embedder
        if parts.embedding is not None:
            embedder = service.embedding_model = ThreadEmbedder(parts.embedding)
            idle = service.idle
        else:  # index with the generating model only while it is loaded and idle
            embedder = LocalEmbedder(service.engine)
            idle = lambda: service.idle() and service.engine.engine.loaded
        service.vectors = VectorSearch(parts.store, embedder, idle=idle)
    return service


def load_parts(cfg: Config) -> Parts:
    """Open the model, store, ledger and policy; blocking (self-check, model load)."""
    datadir.make_private(cfg.data_path)
    routing = RoutingState(cfg.policy, ledger=Ledger(cfg.ledger_path))
    store = ContextStore(cfg.database_path)
    model_path = catalog.Catalog(cfg).active().file()
    _HELD[model_path] = catalog.hold(model_path)  # `model rm` sees it in use while the process runs
    threads = cfg.model.n_threads or os.cpu_count() or 1
    checked = "not run (model.selfcheck = false)"
    speculative = cfg.model.speculative
    if cfg.model.selfcheck:
        check = selfcheck.require(model_path, threads)
        log.info("runtime self-check passed%s: %s", f" in {check.seconds:.1f} s" if check.seconds else "", check.summary)
        checked = f"passed: {check.summary}"
        if speculative and not check.identical:
            # drafts would be verified with logits that differ from a plain step's
            log.warning("speculative decoding off: this runtime's batched logits are not "
                        "bit-identical to one-token steps, so drafts could change answers")
            speculative = False
    engine = build_engine(cfg, model_path, speculative=speculative, threads=threads)
    embedding = None
    if cfg.hybrid_retrieval and cfg.context.embedding_model:
        path = Path(cfg.context.embedding_model).expanduser()
        log.info("loading embedding model %s", path)
        embedding = EmbeddingModel(path, n_threads=threads)
    b = report.build()
    return Parts(
        engine,
        store,
        routing,
        embedding=embedding,
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


def build_engine(cfg: Config, model_path: Path, *, speculative: bool, threads: int) -> LlamaEngine:
    """Load ``model_path`` as ``cfg`` says and calibrate its drafting (blocking): at
    start and for a live switch (``switch_model``)."""
    log.info("loading model %s", model_path)
    try:
        engine = LlamaEngine(
            model_path,
            n_ctx=cfg.model.n_ctx,
            n_threads=threads,
            speculative=speculative,
            kv_types=(cfg.model.kv_type_k, cfg.model.kv_type_v),
            flash_attn=cfg.model.flash_attn,
            watts_per_core=cfg.model.watts_per_core,
            parallel=cfg.server.parallel,
            kv_budget_mib=cfg.server.kv_budget_mib,
        )
    except KVBudgetExceeded as exc:
        raise ConfigError("edge-agent serve", "server.kv_budget_mib", (
            f"at least {exc.needed_mib:.0f} MiB for server.parallel {cfg.server.parallel} x model.n_ctx "
            f"{cfg.model.n_ctx} cells of {cfg.model.kv_type_k}/{cfg.model.kv_type_v} (got {exc.budget_mib:g}); "
            "or lower server.parallel or model.n_ctx, or quantize the cache (model.kv_type_k / kv_type_v)"
        )) from None
    b = report.build()
    log.info(
        "runtime: llama-cpp-python %s build %s; weights in %s; threads %d",
        b["llama_cpp_python"], b["variant"],
        ", ".join(f"{k} {v:.0f} MiB" for k, v in engine.model.buffer_types.items()) or "?",
        threads,
    )
    if cfg.model.calibrate and speculative:
        cal = engine.calibrate()
        if cal.reliable:
            log.info(
                "verification cost (x plain step %.1f ms) for k drafted tokens: %s",
                cal.plain_ms, " ".join(f"{k}:{v:.2f}" for k, v in sorted(cal.points.items()) if k),
            )
    return engine


async def switch_model(cfg: Config, service: AgentService, name: str) -> tuple[str, str, float]:
    """``edge-agent model use NAME`` on a running daemon: the choice is kept for the
    next start, the model is loaded and calibrated beside the running one, then the
    service drains and swaps (``AgentService.switch_engine``). Returns (old name, new
    name, seconds it took)."""
    t0 = time.perf_counter()
    entry = catalog.Catalog(cfg).use(name)
    path = entry.file()
    held = catalog.hold(path)
    old = service.engine.engine
    running = [p for p in _HELD if p != path]
    speculative = bool(getattr(old, "speculative", cfg.model.speculative))
    threads = cfg.model.n_threads or os.cpu_count() or 1
    try:
        engine = await asyncio.to_thread(build_engine, cfg, path, speculative=speculative, threads=threads)
    except BaseException:
        os.close(held)
        raise
    previous = await service.switch_engine(engine)
    for p in running:  # the old model's file may be removed now
        os.close(_HELD.pop(p))
    if path in _HELD:
        os.close(held)
    else:
        _HELD[path] = held
    return previous, engine.model_name, time.perf_counter() - t0
