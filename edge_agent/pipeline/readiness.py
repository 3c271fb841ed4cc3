"""The one readiness object both front doors are handed.

The daemon binds its doors before the model is loaded, so a door asks for the service
at every request: until the daemon attaches it, the answer is ``Unavailable`` (gRPC
UNAVAILABLE, HTTP 503). Errors answered by either door are counted here, once, on the
service's stats.
"""

from __future__ import annotations

from common.errors import Unavailable
from edge_agent.pipeline.service import AgentService


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

    def count_error(self) -> None:
        """Counts a request answered with an error (either door, any cause)."""
        if self._service is not None:
            self._service.stats.error()
