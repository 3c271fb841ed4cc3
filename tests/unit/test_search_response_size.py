"""SearchContext over items of ~1 MiB: the response keeps the best hits that fit in the
gRPC message limit and counts the rest in ``omitted``, instead of failing with
RESOURCE_EXHAUSTED "Sent message larger than max" (checked on a real gRPC server)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import grpc
from edgecloud.v1 import edge_agent_pb2 as pb
from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc

from edge_agent.context.api import Hit, Item
from edge_agent.transport import convert

MIB = 1024 * 1024


def _hits(n: int, body_bytes: int) -> list[Hit]:
    now = datetime.now(UTC)
    return [
        Hit(Item(id=f"i{i}", kind="note", body="x" * body_bytes, title=f"t{i}", source="s", source_id=str(i),
                 participants=(), tags=(), sensitivity="personal", created_at=now), score=10.0 - i)
        for i in range(n)
    ]


def test_hits_past_the_message_limit_are_omitted_and_counted() -> None:
    resp = convert.search_hits(_hits(8, MIB), max_bytes=4 * MIB)
    assert resp.ByteSize() <= 4 * MIB
    assert [h.item.id for h in resp.hits] == ["i0", "i1", "i2"]  # best first, none skipped
    assert resp.omitted == 5


def test_small_results_are_whole() -> None:
    resp = convert.search_hits(_hits(3, 100))
    assert len(resp.hits) == 3 and resp.omitted == 0


def test_over_a_real_grpc_server_with_the_send_limit() -> None:
    class Servicer(pb_grpc.EdgeAgentServicer):
        async def SearchContext(self, request: pb.SearchContextRequest, context: grpc.aio.ServicerContext) -> pb.SearchContextResponse:
            return convert.search_hits(_hits(8, MIB))

    async def main() -> pb.SearchContextResponse:
        opts = [("grpc.max_send_message_length", 4 * MIB), ("grpc.max_receive_message_length", 4 * MIB)]
        server = grpc.aio.server(options=opts)
        pb_grpc.add_EdgeAgentServicer_to_server(Servicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=opts) as ch:
                return await pb_grpc.EdgeAgentStub(ch).SearchContext(pb.SearchContextRequest(query="x", limit=8), timeout=30)
        finally:
            await server.stop(None)

    resp = asyncio.run(main())
    assert len(resp.hits) == 3 and resp.omitted == 5
