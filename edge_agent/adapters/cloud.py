"""gRPC client to cloud-stub: bearer token, deadlines, a circuit breaker the router sees.

Failures surface as ``CloudFailure`` with ``started`` telling whether any text had
arrived (the service falls back to the local model before the first token, and
continues locally after it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator
from pathlib import Path

import grpc
from edgecloud.v1 import cloud_pb2, cloud_pb2_grpc, common_pb2

from common.chat import Prompt
from edge_agent.engine.api import SamplingParams
from edge_agent.pipeline.ports import CloudDone, CloudEvent, CloudFailure, CloudInfo, CloudUsage

log = logging.getLogger(__name__)

# No transparent gRPC retries: each attempt must be seen (and written to the egress
# ledger) by the service, which retries itself within ``max_attempts``.
_CHANNEL_OPTIONS = [("grpc.enable_retries", 0)]
# How long a call waits for a connection being made; a refused one fails at once.
CONNECT_TIMEOUT_S = 2.0
_DOWN = (grpc.ChannelConnectivity.TRANSIENT_FAILURE, grpc.ChannelConnectivity.SHUTDOWN)


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures; one probe after ``cooldown_s``."""

    def __init__(self, threshold: int = 3, cooldown_s: float = 10.0) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._failures = 0
        self._opened_at: float | None = None

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if time.monotonic() - self._opened_at >= self.cooldown_s:
            return "half_open"
        return "open"

    def allows(self) -> bool:
        return self.state != "open"

    def success(self) -> None:
        self._failures = 0
        self._opened_at = None

    def failure(self) -> None:
        self._failures += 1
        if self._failures >= self.threshold or self._opened_at is not None:
            self._opened_at = time.monotonic()


class CloudClient:
    """One channel to the cloud, reused by every request."""

    def __init__(
        self,
        address: str,
        token: str = "",
        *,
        timeout_s: float = 60.0,
        breaker: CircuitBreaker | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        max_attempts: int = 2,
    ) -> None:
        self.address = address
        self.max_attempts = max_attempts
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout_s = timeout_s
        self.breaker = breaker or CircuitBreaker()
        options = list(_CHANNEL_OPTIONS)
        if credentials is None:
            self._channel = grpc.aio.insecure_channel(address, options=options)
        else:
            self._channel = grpc.aio.secure_channel(address, credentials, options=options)
        self._stub = cloud_pb2_grpc.CloudInferenceStub(self._channel)
        self.info: CloudInfo | None = None

    @property
    def available(self) -> bool:
        return self.breaker.allows()

    @property
    def circuit(self) -> str:
        return self.breaker.state

    async def fetch_info(self, timeout_s: float = 2.0) -> CloudInfo | None:
        """Ask the cloud for its model and prices; None (and a breaker failure) when down."""
        try:
            r = await self._stub.Info(cloud_pb2.InfoRequest(), metadata=self._metadata, timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            log.warning("cloud Info failed: %s", exc.code().name)
            self.breaker.failure()
            return None
        if r is None:  # grpc.aio hands back None for an answer that does not decode
            log.warning("cloud Info answer does not decode")
            self.breaker.failure()
            return None
        self.breaker.success()
        self.info = CloudInfo(r.model, r.context_length, r.price_in_per_1k, r.price_out_per_1k, r.max_tokens_limit)
        return self.info

    async def generate(
        self, request_id: str, prompt: Prompt, params: SamplingParams, *, timeout_s: float | None = None
    ) -> AsyncGenerator[CloudEvent, None]:
        """Stream the cloud's answer to a prompt or a conversation; raises CloudFailure
        on any failure."""
        gp = common_pb2.GenerationParams(
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,
            stop=list(params.stop),
            json_schema=params.json_schema,
        )
        if params.seed is not None:
            gp.seed = params.seed
        req = cloud_pb2.CloudGenerateRequest(request_id=request_id, params=gp)
        if isinstance(prompt, str):
            req.prompt = prompt
        else:
            req.messages.extend(common_pb2.ChatMessage(role=m.role, content=m.content) for m in prompt)
        started = False
        if not await self._connected(min(CONNECT_TIMEOUT_S, timeout_s or self._timeout_s)):
            self.breaker.failure()
            raise CloudFailure("cloud unavailable: not connected, nothing sent", False, retryable=True, sent=False)
        call = self._stub.Generate(req, metadata=self._metadata, timeout=timeout_s or self._timeout_s)
        try:
            async for msg in call:
                if msg is None:  # grpc.aio yields None for a message that does not decode
                    self.breaker.failure()
                    raise CloudFailure("cloud sent a message that does not decode", started)
                if msg.HasField("done"):
                    self.breaker.success()
                    u = msg.done.usage
                    usage = CloudUsage(u.prompt_tokens, u.completion_tokens, u.ttft_ms, u.tokens_per_s)
                    yield CloudDone(usage, msg.done.finish_reason)
                    return
                started = True
                yield msg.delta
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                self.breaker.failure()
            raise CloudFailure(
                f"cloud {exc.code().name.lower()}: {exc.details() or ''}".strip(),
                started,
                retryable=exc.code() == grpc.StatusCode.UNAVAILABLE,
            ) from None
        finally:
            call.cancel()
        self.breaker.failure()
        raise CloudFailure("cloud stream ended without a final message", started)

    async def _connected(self, timeout_s: float) -> bool:
        """Whether a connection to the cloud is up (waiting up to ``timeout_s`` while one
        is being made). False means a call now would send nothing: the ledger says so."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        state = self._channel.get_state(try_to_connect=True)
        while state != grpc.ChannelConnectivity.READY:
            left = deadline - loop.time()
            if state in _DOWN or left <= 0:
                return False
            try:
                await asyncio.wait_for(self._channel.wait_for_state_change(state), left)
            except TimeoutError:
                return False
            state = self._channel.get_state()
        return True

    async def close(self) -> None:
        await self._channel.close()


def tls_credentials(ca_file: str, cert_file: str = "", key_file: str = "") -> grpc.ChannelCredentials:
    """Channel credentials from PEM files: the CA, and a client certificate for mTLS."""
    def read(path: str) -> bytes | None:
        return Path(path).read_bytes() if path else None

    return grpc.ssl_channel_credentials(
        root_certificates=read(ca_file), private_key=read(key_file), certificate_chain=read(cert_file)
    )
