"""The TCP bearer token: a 0600 file made once, read by clients, rotated without a
restart; the gRPC interceptor refuses calls without it (health stays open)."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.errors import ConfigError
from common.rpc import BearerInterceptor, Lifecycle, bearer_of, token_matches, with_bearer
from edge_agent.transport.auth import TokenCheck, ensure_token, read_token, rotate_token


def test_token_file_is_made_once_0600_and_rotated(tmp_path: Path) -> None:
    path = tmp_path / "data" / "token"
    old = os.umask(0)
    try:
        first = ensure_token(path)
    finally:
        os.umask(old)
    assert len(first) >= 40 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert ensure_token(path) == first == read_token(path)
    os.chmod(path, 0o644)
    ensure_token(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # a loosened file is tightened
    second = rotate_token(path)
    assert second != first and read_token(path) == second
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["token"]  # no temporary file left


@pytest.mark.parametrize("text", ["", "   \n", "two words", "caf\u00e9"])
def test_a_bad_token_file_names_file_and_key(tmp_path: Path, text: str) -> None:
    path = tmp_path / "token"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        read_token(path)
    assert info.value.key == "server.token_file" and info.value.file == str(path)
    with pytest.raises(ConfigError, match="first start"):
        read_token(tmp_path / "missing")


def test_check_follows_rotation_and_keeps_the_last_token_if_the_file_goes(tmp_path: Path) -> None:
    path = tmp_path / "token"
    check = TokenCheck(path, recheck_s=0.0)
    first = read_token(path).encode()
    assert check.accepts(first) and not check.accepts(b"") and not check.accepts(first + b"x")
    second = rotate_token(path).encode()
    assert check.accepts(second) and not check.accepts(first)
    path.unlink()
    assert check.accepts(second)  # vanished: the last token stays
    fixed = TokenCheck(None, fixed="abc")
    assert fixed.accepts(b"abc") and not fixed.accepts(b"abd")


def test_bearer_parsing_and_empty_expected_token() -> None:
    assert bearer_of((("authorization", "Bearer  tok "),)) == b"tok"
    assert bearer_of((("authorization", "bearer tok"),)) == b"tok"
    assert bearer_of((("authorization", "Basic tok"),)) == b""
    assert bearer_of(()) == b"" and bearer_of(None) == b""
    assert not token_matches(b"", b"")  # an empty token matches nothing


def test_interceptor_refuses_calls_without_the_token_and_leaves_health_open(tmp_path: Path) -> None:
    path = tmp_path / "token"
    check = TokenCheck(path, recheck_s=0.0)

    async def serve() -> tuple[grpc.aio.Server, int]:
        server = grpc.aio.server(interceptors=[BearerInterceptor(check.accepts, "authorization: needs the token")])
        life = Lifecycle(server, ("x.Y",), ("",))
        await life.set(("",), True)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, port

    loop = asyncio.new_event_loop()
    server, port = loop.run_until_complete(serve())
    import threading

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        target = f"127.0.0.1:{port}"
        request = health_pb2.HealthCheckRequest(service="")
        with grpc.insecure_channel(target) as ch:
            assert health_pb2_grpc.HealthStub(ch).Check(request, timeout=5).status == health_pb2.HealthCheckResponse.SERVING
            from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

            refl = reflection_pb2_grpc.ServerReflectionStub(ch)
            with pytest.raises(grpc.RpcError) as denied:
                list(refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5))
            assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "needs the token" in (denied.value.details() or "")
        with with_bearer(grpc.insecure_channel(target), read_token(path)) as ch:
            refl = reflection_pb2_grpc.ServerReflectionStub(ch)
            got = list(refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5))
            assert any(s.name == "x.Y" for s in got[0].list_services_response.service)
        old = read_token(path)
        rotate_token(path)
        time.sleep(0.05)
        with with_bearer(grpc.insecure_channel(target), old) as ch, pytest.raises(grpc.RpcError) as stale:
            refl = reflection_pb2_grpc.ServerReflectionStub(ch)
            list(refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5))
        assert stale.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(0), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
