"""Child process of the durability test: writes batches and acknowledges each one.

``python durability_writer.py DB put``  writes batches with ``ContextStore.put`` forever;
``python durability_writer.py DB import JSONL``  imports a JSON lines file in batches.
After a batch is durable it prints one JSON line ``{"batch": n, "ids": [...]}``; the
parent kills this process with SIGKILL at some point and checks what was acknowledged.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from edge_agent.context.api import NewItem
from edge_agent.context.importers import import_paths
from edge_agent.context.store import ContextStore

BATCH = 40
FILLER = "lorem ipsum dolor sit amet " * 20


def main() -> None:
    store = ContextStore(sys.argv[1], purge_interval_s=None)
    counter = iter(range(10**9))

    def ack(ids: list[str]) -> None:
        print(json.dumps({"batch": next(counter), "ids": ids}), flush=True)

    if sys.argv[2] == "import":
        import_paths(store, [sys.argv[3]], batch_size=BATCH, on_batch=ack)
        print("done", flush=True)
        return
    batch = 0
    while True:
        items = [
            NewItem(kind="note", body=f"batch{batch} item{i} {FILLER}", source="durability",
                    source_id=f"{batch}-{i}", tags=(f"b{batch}",))
            for i in range(BATCH)
        ]
        ack(store.put(items))
        batch += 1


if __name__ == "__main__":
    main()
