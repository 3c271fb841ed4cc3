"""What is running, in one shape for ``GET /v1/status`` and ``edge-agent ps``: the model
and its state, its memory (weights, KV cache, the process's resident set), keep-alive and
expiry, the queue."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def status_body(model: Mapping[str, Any], runtime: Mapping[str, Any]) -> dict[str, Any]:
    """``GET /v1/status`` (and ``edge-agent ps``): the model, memory, keep-alive, queue."""
    weights = sum(float(v) for v in dict(runtime.get("buffer_types_mib") or {}).values())
    kv = float(runtime.get("kv_cache_mib") or 0.0)
    loaded = model.get("state") in ("ready", "loading")
    keep = float(model.get("keep_alive_s", -1.0))
    expires = float(model.get("expires_in_s", -1.0))
    return {
        "status": model.get("state"),
        "model": model.get("name"),
        "memory_mib": {
            "weights": round(weights, 1) if loaded else 0.0,
            "kv_cache": round(kv, 1) if loaded else 0.0,
            "kv_types": runtime.get("kv_types", ""),
            # the whole process, as the kernel counts it: the weights' buffers above count
            # the model file's mapping whole, though repacked weights are not resident there
            "resident": round(float(runtime.get("resident_mib") or 0.0), 1),
        },
        "keep_alive_s": None if keep < 0 else keep,  # None: kept forever
        "expires_in_s": None if expires < 0 else round(expires, 1),  # None: not scheduled
        "requests": {"active": model.get("active", 0), "waiting": model.get("waiting", 0),
                     "queue_depth": model.get("queue_depth", 0)},
        "loads": model.get("loads", 0),
        "unloads": model.get("unloads", 0),
        "threads": runtime.get("threads", 0),
    }
