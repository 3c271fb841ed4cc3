"""The one readiness object both front doors are handed.

The daemon binds its doors before the model is loaded, so a door asks for the service
at every request: until the daemon attaches it, the answer is ``Unavailable`` (gRPC
UNAVAILABLE, HTTP 503). Errors answered by either door are counted here, once, on the
service's stats.

One readiness for both doors (``health``): the daemon is ready to serve once the service
is attached (model loaded at start, warm-up run) -- gRPC health's readiness names go
SERVING then, and HTTP ``GET /health`` answers 200. After that a model freed when idle
(``unloaded``) or being read again for a request (``loading``) is still ready: requests
are what load it, so a probe must not take the daemon out of rotation meanwhile. Only
the start (``starting``, 503 / NOT_SERVING) and the drain at shutdown are not ready.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.errors import Unavailable
from edge_agent.pipeline.service import AgentService


@dataclass(frozen=True)
class Health:
    """What a readiness probe is told: serving or not, and the model's state."""

    serving: bool
    status: str  # starting | ready | unloaded | loading
    model: str | None = None


class Readiness:
    """The request pipeline once it is loaded and warm; ``None`` until then."""

    def __init__(self, service: AgentService | None = None) -> None:
        self._service = service

    @property
    def service(self) -> AgentService:
        """The request pipeline; ``Unavailable`` until the model is loaded and warm."""
        if self._service is None:
            raise Unavailable("the daemon is starting: the model is not loaded yet")
        return self._service

    @property
    def ready(self) -> bool:
        return self._service is not None

    def attach(self, service: AgentService) -> None:
        self._service = service

    def health(self) -> Health:
        """The one readiness rule both doors follow (see the module docstring)."""
        if self._service is None:
            return Health(False, "starting")
        state = self._service.model_state()
        return Health(True, str(state["state"]), str(state["name"]))

    def count_error(self) -> None:
        """Counts a request answered with an error (either door, any cause)."""
        if self._service is not None:
            self._service.stats.error()
