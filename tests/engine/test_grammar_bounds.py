"""Grammars reach llama.cpp only within bounds: a grammar nested 100,000 deep (what
``maxLength: 100000`` used to become) is refused by ``GrammarConstraint`` and the
engine, in a worker thread, instead of overflowing llama.cpp's parser (SIGSEGV). Run
in a child process, so a crash fails the test instead of the test run. The grammars of
usual schemas, written with ``x{m,n}``, parse in llama.cpp."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.model

_CHILD = textwrap.dedent(
    """
    import sys, threading
    import llama_cpp as lc
    from common.errors import InvalidArgument
    from edge_agent.engine.api import SamplingParams
    from edge_agent.engine.grammar import GrammarConstraint
    from edge_agent.engine.llama_engine import LlamaEngine

    engine = LlamaEngine(sys.argv[1], n_ctx=256)
    model = engine._model
    out = []

    def work():
        nested = "root ::= " + "(" * 100000 + '"a"' + ")" * 100000
        try:
            GrammarConstraint(model.vocab, model.n_vocab, nested)
            out.append("constraint accepted")
        except InvalidArgument as exc:
            out.append("constraint refused: " + exc.message[:80])
        for schema in ('{"type":"string","maxLength":100000}', '{"type":"string","pattern":"^a{0,100000}$"}'):
            try:
                list(engine.generate("x", SamplingParams(max_tokens=2, json_schema=schema)))
                out.append("engine accepted")
            except InvalidArgument as exc:
                out.append("engine refused: " + exc.field)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    print("\\n".join(out), flush=True)
    """
)


def test_a_grammar_bomb_is_refused_in_a_worker_thread_not_a_crash(model_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(model_path)], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"the child died ({proc.returncode}):\n{proc.stderr[-3000:]}"
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("constraint refused: json_schema: the grammar built from the schema nests groups"), lines
    assert lines[1:] == ["engine refused: json_schema.maxLength", "engine refused: json_schema.pattern"], lines


SCHEMAS = [
    {"type": "string", "minLength": 2, "maxLength": 1000},
    {"type": "array", "items": {"type": "string", "maxLength": 20}, "minItems": 2, "maxItems": 900},
    {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{3,5}(-[a-z]{1,8}){0,3}$"},
    {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(100)}, "required": ["p0"]},
    {"type": "object", "properties": {"when": {"type": "string", "format": "date"}, "tags": {"type": "array", "items": {"enum": ["a", "b"]}}}},
]


def test_the_grammars_of_usual_schemas_parse_in_llama_cpp(model_path: Path) -> None:
    from common.params import check_schema
    from edge_agent.engine.grammar import GrammarConstraint, schema_grammar
    from edge_agent.engine.llama_engine import LlamaEngine

    model = LlamaEngine(model_path, n_ctx=256)._model
    for schema in SCHEMAS:
        gbnf = schema_grammar(check_schema(json.dumps(schema)))
        GrammarConstraint(model.vocab, model.n_vocab, gbnf).close()  # InvalidArgument if llama.cpp refused it


_SMALL_STACK = textwrap.dedent(
    """
    import sys, threading
    import llama_cpp as lc
    from common.gbnf import check_grammar
    from common.schema_limits import MAX_GRAMMAR_NESTING, MAX_GRAMMAR_RECURSION

    lc.llama_backend_init()
    p = lc.llama_model_default_params()
    p.vocab_only = True
    vocab = lc.llama_model_get_vocab(lc.llama_model_load_from_file(sys.argv[1].encode(), p))
    n, k = MAX_GRAMMAR_NESTING - 1, MAX_GRAMMAR_RECURSION - 3
    deepest = "root ::= " + "(" * n + '"a"' + ")" * n
    longest = "root ::= r0\\n" + "".join(f'r{i} ::= "x"? r{i + 1}\\n' for i in range(k)) + f'r{k} ::= "a"\\n'
    out = []

    def run():
        for g in (deepest, longest):
            check_grammar(g)  # within the bounds
            out.append(bool(lc.llama_sampler_init_grammar(vocab, g.encode(), b"root")))

    threading.stack_size(256 * 1024)
    t = threading.Thread(target=run)
    t.start()
    t.join()
    print(out)
    """
)


def test_the_largest_grammars_the_bounds_allow_parse_in_a_small_thread_stack(model_path: Path) -> None:
    """The margin: the deepest nesting and the longest chain of empty-matching rules the
    bounds let through parse in a 256 KiB thread (Linux gives threads 8 MiB by default)."""
    proc = subprocess.run([sys.executable, "-c", _SMALL_STACK, str(model_path)], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"the child died ({proc.returncode}):\n{proc.stderr[-3000:]}"
    assert proc.stdout.strip() == "[True, True]"
