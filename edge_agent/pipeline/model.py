"""The former name of ``edge_agent.pipeline.types``, for the HTTP door's two modules
while they are being changed; removed once their imports move."""

from __future__ import annotations

from edge_agent.pipeline.types import AskRequest as AskRequest
from edge_agent.pipeline.types import Event as Event
from edge_agent.pipeline.types import Outcome as Outcome
