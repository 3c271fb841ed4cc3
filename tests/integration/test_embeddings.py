"""Embeddings from the local model: the engine's vectors, and the daemon's two doors
(the official ``openai`` SDK on /v1/embeddings, the gRPC ``Embed`` RPC) on the real
model; bad requests refused with the field named."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import openai
import pytest
from conftest import Service, http_agent, openai_client
from edgecloud.v1 import edge_agent_pb2 as pb
from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc

from common.errors import InvalidArgument, OutOfRange
from edge_agent.engine.llama_engine import LlamaEngine
from edge_agent.engine.llama_model import EMBED_CTX

pytestmark = pytest.mark.model

TOKEN = "emb-token"
MODEL = "gemma-3-270m-q4_k_m"
TEXTS = ["The cat sat on the mat.", "A cat was sitting on a mat.", "Quarterly revenue grew by five percent."]


@pytest.fixture(scope="module")
def engine(model_path: Path) -> Iterator[LlamaEngine]:
    eng = LlamaEngine(model_path, n_ctx=1024, speculative=False, remember_answers=False)
    yield eng
    eng.close()


def test_vectors_are_unit_length_and_repeatable(engine: LlamaEngine) -> None:
    out = engine.embed([*TEXTS, TEXTS[0]])
    v = out.vectors
    assert v.shape == (4, engine.model.n_embd) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    # the same request, the same vectors, bit for bit
    assert np.array_equal(engine.embed([*TEXTS, TEXTS[0]]).vectors, v)
    # the same text twice in one batch: the same direction. Not bit for bit: a decode of
    # more than 32 tokens runs the batched kernels, whose rounding depends on a row's place
    # (measured: up to 2e-3 per component with AVX-512, 1e-6 with AVX2; README)
    assert float(v[0] @ v[3]) > 0.9999
    assert not np.allclose(v[0], v[1])
    assert out.pooling == "mean" and out.prompt_tokens == sum(len(engine.tokenize_prompt(t)) for t in [*TEXTS, TEXTS[0]])
    alone = engine.embed([TEXTS[1]]).vectors[0]
    assert float(alone @ v[1]) > 0.999  # batched with others or alone: the same direction (README)


def test_similar_texts_are_closer_than_unrelated_ones(engine: LlamaEngine) -> None:
    v = engine.embed(TEXTS).vectors
    assert float(v[0] @ v[1]) > float(v[0] @ v[2])


def test_embedding_and_generation_share_the_weights(engine: LlamaEngine) -> None:
    from edge_agent.engine.api import Finished, SamplingParams

    before = [ev for ev in engine.generate("Hello", SamplingParams(max_tokens=4)) if isinstance(ev, Finished)]
    engine.embed(["between two generations"])
    engine.reset_cache()
    after = [ev for ev in engine.generate("Hello", SamplingParams(max_tokens=4)) if isinstance(ev, Finished)]
    assert before[0].usage.completion_tokens == after[0].usage.completion_tokens


def test_the_engine_refuses_what_it_cannot_embed(engine: LlamaEngine) -> None:
    with pytest.raises(InvalidArgument) as err:
        engine.embed(["fine", "  "])
    assert err.value.field == "input[1]"
    with pytest.raises(OutOfRange) as too_long:
        engine.embed(["word " * (EMBED_CTX + 10)])
    assert too_long.value.field == "input[0]"


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    yield from http_agent(tmp_path_factory, "agent-emb", TOKEN)


@pytest.fixture(scope="module")
def client(agent: Service) -> Iterator[openai.OpenAI]:
    yield from openai_client(agent, TOKEN)


def test_openai_sdk_embeddings(client: openai.OpenAI, agent: Service) -> None:
    raw = client.embeddings.with_raw_response.create(model=MODEL, input=TEXTS, encoding_format="float")
    assert raw.headers["x-edgecloud-route"] == "local"
    resp = raw.parse()
    assert [d.index for d in resp.data] == [0, 1, 2] and resp.model == MODEL
    v = np.array([d.embedding for d in resp.data], dtype=np.float32)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert resp.usage.prompt_tokens == resp.usage.total_tokens > 0
    # base64 is the same little-endian float32 vector (the SDK's default format)
    b = client.embeddings.create(model=MODEL, input=TEXTS[0], encoding_format="base64")
    got = b.data[0].embedding
    vec = np.frombuffer(base64.b64decode(got), dtype="<f4") if isinstance(got, str) else np.array(got, dtype=np.float32)
    assert np.allclose(vec, v[0], atol=1e-6)
    # the gRPC door gives the same vectors
    with grpc.insecure_channel(agent.grpc_target) as ch:
        g = pb_grpc.EdgeAgentStub(ch).Embed(pb.EmbedRequest(input=TEXTS, app_id="notes"), timeout=120)
    assert g.dimensions == v.shape[1] and g.pooling == "mean" and g.prompt_tokens == resp.usage.prompt_tokens
    assert np.allclose(np.array([e.values for e in g.data], dtype=np.float32), v, atol=1e-6)
    assert "embeddings app=notes inputs=3" in agent.log()


@pytest.mark.parametrize(("kwargs", "param"), [
    ({"input": ""}, "input"),
    ({"input": ["ok", ""]}, "input[1]"),
    ({"input": [[1, 2, 3]]}, "input"),
    ({"input": "x", "dimensions": 7}, "dimensions"),
    ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
])
def test_bad_embedding_requests_name_the_field(client: openai.OpenAI, kwargs: dict, param: str) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.embeddings.create(model=MODEL, **kwargs)
    assert err.value.status_code == 400 and param in str(err.value), str(err.value)


def test_unknown_model_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="no-such-model", input="x")


def test_grpc_embed_refuses_an_empty_request(agent: Service) -> None:
    with grpc.insecure_channel(agent.grpc_target) as ch, pytest.raises(grpc.RpcError) as err:
        pb_grpc.EdgeAgentStub(ch).Embed(pb.EmbedRequest(input=[]), timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "input" in (err.value.details() or "")
