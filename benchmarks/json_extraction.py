"""Benchmark: speculative decoding under a JSON-schema grammar against llama-cpp-python
with the same grammar, greedy, on a JSON-extraction suite.

Six grounded prompts, each a personal item (an email, a calendar invite, a contact card,
a receipt, a travel booking, a meeting note) followed by the instruction to extract its
fields as JSON matching a schema (strings, enums, integers, numbers, arrays, nested
objects); the values are copied from the item, so drafts from the prompt can pay. The
shipped model is a base model (no chat template): the prompt is plain text ending in
``JSON: ``.

Contenders, all greedy, same GGUF file, n_ctx, thread count and max_tokens, interleaved
per prompt (the order rotates), every run from an empty KV cache:

* ``own_spec``: our engine with drafting (calibrated once; past answers are not kept as
  drafts, and the draft corpus is cleared before each prompt, so only the prompt and
  the answer so far feed the drafts);
* ``own_plain``: our decode loop without drafting;
* ``peer``: llama-cpp-python ``create_completion`` with
  ``LlamaGrammar.from_json_schema`` of the same schema (both sides convert the schema
  with llama-cpp-python's ``json_schema_to_gbnf``).

tok/s is the decode rate after the first token, ``(completion_tokens - 1) / (t_last -
t_first)``, where t_last is the end of the last decoding step (the one that samples the
end-of-generation token when the answer stops). Ours comes from ``Finished.usage``; the
peer's is timed with a stopping-criteria callback called after every sampled token
(non-streamed call; completion_tokens from its ``usage``), as in ``speculative.py``.
Each prompt runs ``--repeats`` times per contender; the per-prompt figure is the median,
and the overall ratios are medians over prompts of per-prompt ratios. Every answer is
checked with ``json.loads`` and ``jsonschema.validate``; ``identical`` says whether the
speculative text equals the plain one in every repeat. Where the last repeat's
speculative tokens leave the plain ones, the first differing position is evaluated
again (one token at a time and in the speculative run's batches, as in
``speculative.py``): a flip is *explained* when the plain-minus-speculative logit margin
is no larger than the largest logit difference between the two evaluations.

    python benchmarks/json_extraction.py --json benchmarks/results/json_extraction.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import jsonschema
import numpy as np

from edge_agent.engine.api import Finished, SamplingParams, TextDelta
from edge_agent.engine.llama_engine import LlamaEngine
from edge_agent.engine.llama_model import on_model_thread

CONTENDERS = ("own_spec", "own_plain", "peer")


def _s(n: int) -> dict[str, Any]:
    return {"type": "string", "maxLength": n}


ITEMS: list[dict[str, Any]] = [
    {
        "name": "email",
        "text": (
            "From: Priya Raman <priya.raman@northwindlabs.com>\n"
            "To: Tom Becker <tom.becker@northwindlabs.com>\n"
            "Cc: Dana Whitfield, Luis Ortega\n"
            "Subject: Q3 vendor review moved to Thursday\n\n"
            "Hi Tom,\n\n"
            "Quick heads-up: the Q3 vendor review with Halvorsen Logistics is moving from Tuesday to "
            "Thursday, September 19, at 14:30 in Room 4B on the third floor. Their account manager, "
            "Erik Halvorsen, can only join in person that day. Could you bring the signed renewal "
            "contract? The final figure we agreed on is $48,250 for twelve months, down from the "
            "$52,000 they first quoted. Please confirm by Wednesday noon so I can book the room for "
            "the full ninety minutes. This one is important: finance needs the contract filed before "
            "the quarter closes.\n\n"
            "Thanks,\nPriya"
        ),
        "what": "the email's details",
        "schema": {
            "type": "object",
            "properties": {
                "sender_name": _s(40),
                "sender_email": _s(60),
                "recipient_name": _s(40),
                "subject": _s(80),
                "cc": {"type": "array", "items": _s(40), "maxItems": 4},
                "meeting": {
                    "type": "object",
                    "properties": {"day": _s(30), "time": _s(10), "room": _s(20)},
                    "required": ["day", "time", "room"],
                },
                "contract_value_usd": {"type": "number"},
                "urgency": {"enum": ["low", "normal", "high"]},
            },
            "required": ["sender_name", "sender_email", "recipient_name", "subject", "cc", "meeting",
                         "contract_value_usd", "urgency"],
        },
    },
    {
        "name": "calendar_invite",
        "text": (
            "Invitation: Product launch rehearsal\n"
            "Organizer: Marcus Oyelaran (marcus@lumenstudio.fr)\n"
            "When: Friday, November 8, 2024, 09:00 - 11:30 (Central European Time)\n"
            "Where: Studio 2, 18 Rue Oberkampf, 75011 Paris\n"
            "Video: https://meet.lumenstudio.fr/launch-rehearsal\n"
            "Guests: Claire Dubois, Hamid Benali, Sofia Marchetti, Jonas Weber\n"
            "Reminder: 30 minutes before\n\n"
            "Full run-through of the Aurora launch: keynote, live demo and the press Q&A. Please "
            "arrive ten minutes early for the sound check; coffee and croissants from 08:45. Claire "
            "presents the keynote, Hamid runs the demo on the staging build, Sofia moderates the Q&A "
            "and Jonas takes notes for the follow-up. Bring your laptop charger.\n\n"
            "Your response: Tentative"
        ),
        "what": "the invitation's details",
        "schema": {
            "type": "object",
            "properties": {
                "title": _s(60),
                "organizer": _s(40),
                "date": _s(40),
                "start_time": _s(10),
                "end_time": _s(10),
                "location": _s(60),
                "guests": {"type": "array", "items": _s(40), "maxItems": 5},
                "reminder_minutes": {"type": "integer"},
                "response": {"enum": ["accepted", "tentative", "declined", "needs_action"]},
            },
            "required": ["title", "organizer", "date", "start_time", "end_time", "location", "guests",
                         "reminder_minutes", "response"],
        },
    },
    {
        "name": "contact_card",
        "text": (
            "Contact card\n"
            "Name: Dr. Helena Voss\n"
            "Job: Pediatrician, Lindenhof Children's Clinic\n"
            "Phone (practice): +49 30 5557 2291\n"
            "Mobile: +49 171 555 0846\n"
            "Email: h.voss@lindenhof-klinik.de\n"
            "Address: Karl-Marx-Allee 112, 10243 Berlin, Germany\n"
            "Birthday: 12 May\n"
            "Notes: Liam's doctor since 2021. Prefers email for anything that is not urgent; the "
            "practice line is staffed Monday to Friday, 8:00 to 13:00, and the mobile number is for "
            "emergencies only. Vaccination appointments have to be booked at least two weeks ahead "
            "through the practice. She asked us to bring the yellow vaccination booklet to every "
            "visit. Her assistant is Mrs. Karin Albers."
        ),
        "what": "the contact's details",
        "schema": {
            "type": "object",
            "properties": {
                "full_name": _s(40),
                "profession": _s(40),
                "organization": _s(60),
                "phone": _s(24),
                "mobile": _s(24),
                "email": _s(60),
                "address": {
                    "type": "object",
                    "properties": {"street": _s(40), "postal_code": _s(10), "city": _s(30), "country": _s(30)},
                    "required": ["street", "postal_code", "city", "country"],
                },
                "relationship": {"enum": ["family", "friend", "work", "medical", "service"]},
            },
            "required": ["full_name", "profession", "organization", "phone", "mobile", "email", "address",
                         "relationship"],
        },
    },
    {
        "name": "receipt",
        "text": (
            "GREENLEAF MARKET #0417\n"
            "2210 Alder Street, Portland, OR 97205\n"
            "Date: 2024-06-22  Time: 18:42\n"
            "Cashier: Jamie  Register: 3\n\n"
            "Organic bananas 1.2 kg        2.39\n"
            "Oat milk 2 x 1.89             3.78\n"
            "Sourdough loaf                4.50\n"
            "Free-range eggs (12)          5.25\n"
            "Aged cheddar 250 g            3.99\n\n"
            "Subtotal                     19.91\n"
            "Tax                           1.59\n"
            "TOTAL                        21.50\n\n"
            "Paid by VISA credit card ending in 4821\n"
            "Rewards member: Nora Castillo, points earned today: 21, balance 1,340\n"
            "Returns accepted within 30 days with this receipt. Bring your own bag next time and save "
            "10 cents. Thank you for shopping local!"
        ),
        "what": "the purchase",
        "schema": {
            "type": "object",
            "properties": {
                "store": _s(40),
                "date": _s(12),
                "time": _s(8),
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"name": _s(30), "price": {"type": "number"}},
                        "required": ["name", "price"],
                    },
                    "maxItems": 5,
                },
                "tax": {"type": "number"},
                "total": {"type": "number"},
                "payment": {"enum": ["cash", "credit_card", "debit_card", "mobile"]},
                "card_last4": _s(4),
            },
            "required": ["store", "date", "time", "items", "tax", "total", "payment", "card_last4"],
        },
    },
    {
        "name": "travel_booking",
        "text": (
            "Booking confirmation - reference QX7TPL\n\n"
            "Dear Samuel Okafor, thank you for booking with Skyway Travel. Your trip is confirmed.\n\n"
            "Flight: LH 2417, Munich (MUC) to Lisbon (LIS)\n"
            "Date: Saturday, 14 December 2024\n"
            "Departure 07:55, arrival 10:20 (local times)\n"
            "Seat 23C, Economy class, 1 checked bag up to 23 kg\n\n"
            "Hotel: Casa do Rio, Rua da Alfandega 88, Lisbon\n"
            "Check-in 14 December, check-out 17 December (3 nights), double room, breakfast included\n"
            "Total paid: EUR 486.00 (flight EUR 171.00, hotel EUR 315.00)\n\n"
            "Online check-in opens 23 hours before departure. Please have your passport ready at "
            "the gate; the hotel reception is open around the clock."
        ),
        "what": "the booking",
        "schema": {
            "type": "object",
            "properties": {
                "booking_reference": _s(10),
                "passenger": _s(40),
                "flight": {
                    "type": "object",
                    "properties": {
                        "number": _s(10), "from": _s(30), "to": _s(30), "date": _s(40),
                        "departure": _s(8), "arrival": _s(8),
                    },
                    "required": ["number", "from", "to", "date", "departure", "arrival"],
                },
                "seat": _s(6),
                "cabin": {"enum": ["economy", "premium_economy", "business", "first"]},
                "checked_bags": {"type": "integer"},
                "hotel": _s(40),
                "nights": {"type": "integer"},
                "total_eur": {"type": "number"},
            },
            "required": ["booking_reference", "passenger", "flight", "seat", "cabin", "checked_bags", "hotel",
                         "nights", "total_eur"],
        },
    },
    {
        "name": "meeting_note",
        "text": (
            "Kitchen renovation sync - Monday, 3 March 2025\n"
            "Present: Alice Moreau, Ben Carter (Carter & Sons), Yuki Tanaka (designer)\n\n"
            "Decisions: we go with the quartz countertops (quote $6,400) instead of marble, and keep "
            "the existing window. Cabinets will be delivered on March 24; demolition starts the week "
            "before. Budget: $38,500 committed of the $40,000 limit, so there is little room left for "
            "surprises behind the walls.\n\n"
            "Action items:\n"
            "- Ben Carter: order the undermount sink by Friday\n"
            "- Yuki Tanaka: send three tile samples for the backsplash\n"
            "- Alice Moreau: pay the 30% deposit ($1,920) to Carter & Sons\n\n"
            "Next meeting: Monday, March 17, 8:00 am, on site."
        ),
        "what": "the meeting's outcome",
        "schema": {
            "type": "object",
            "properties": {
                "title": _s(60),
                "date": _s(30),
                "attendees": {"type": "array", "items": _s(30), "maxItems": 4},
                "countertop_quote_usd": {"type": "number"},
                "budget": {
                    "type": "object",
                    "properties": {"committed_usd": {"type": "number"}, "limit_usd": {"type": "number"}},
                    "required": ["committed_usd", "limit_usd"],
                },
                "action_items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"owner": _s(30), "task": _s(60)},
                        "required": ["owner", "task"],
                    },
                    "maxItems": 3,
                },
                "next_meeting": _s(40),
            },
            "required": ["title", "date", "attendees", "countertop_quote_usd", "budget", "action_items",
                         "next_meeting"],
        },
    },
]


def prompt_of(item: dict[str, Any]) -> str:
    schema = json.dumps(item["schema"], separators=(",", ":"))
    return f"{item['text']}\n\nExtract {item['what']} as JSON matching this schema:\n{schema}\nJSON: "


def _rates(n: int, t0: float, t_first: float, t_end: float) -> tuple[float, float]:
    decode = t_end - t_first
    return (t_first - t0) * 1000.0, ((n - 1) / decode if n > 1 and decode > 0 else 0.0)


class Own:
    """Our engine, with or without drafting."""

    def __init__(self, model_path: Path, n_ctx: int, threads: int, speculative: bool) -> None:
        self.engine = LlamaEngine(model_path, n_ctx=n_ctx, n_threads=threads, speculative=speculative)
        self.engine.remember_answers = False  # earlier answers must not feed the drafts
        if speculative:
            self.engine.calibrate()  # as the daemon does at start

    def run(self, prompt: str, schema: str, max_tokens: int) -> dict[str, Any]:
        self.engine.reset_cache()
        self.engine.forget_drafts()
        parts: list[str] = []
        fin: Finished | None = None
        record = self.engine.traced(prompt, SamplingParams(max_tokens=max_tokens, json_schema=schema))
        for ev in record.events:
            if isinstance(ev, TextDelta):
                parts.append(ev.text)
            else:
                fin = ev
        assert fin is not None
        st, u = record.stats, fin.usage
        self.tokens, self.trace = list(record.tokens), list(st.trace or [])
        return {
            "text": "".join(parts), "tokens": u.completion_tokens, "tok_s": u.tokens_per_s,
            "ttft_ms": u.ttft_ms, "total_ms": u.total_ms, "finish_reason": fin.finish_reason,
            "drafted": st.drafted_tokens, "accepted": st.accepted_tokens, "verify_steps": st.verify_steps,
        }


class Peer:
    """llama-cpp-python with the grammar of the same schema."""

    def __init__(self, model_path: Path, n_ctx: int, threads: int) -> None:
        import llama_cpp

        self._lc = llama_cpp
        # loaded and run on our engine's llama.cpp thread: one OpenMP team in the process
        # (a second one slows both sides: engine.llama_model.on_model_thread)
        self.llm = on_model_thread(lambda: llama_cpp.Llama(
            model_path=str(model_path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
            n_batch=512, flash_attn=True,  # what llama.cpp's "auto" picks for our context on this CPU
            verbose=False, logits_all=False,
        ))
        self._grammars: dict[str, Any] = {}

    def run(self, prompt: str, schema: str, max_tokens: int) -> dict[str, Any]:
        return on_model_thread(lambda: self._run(prompt, schema, max_tokens))

    def _run(self, prompt: str, schema: str, max_tokens: int) -> dict[str, Any]:
        lc = self._lc
        if schema not in self._grammars:
            self._grammars[schema] = lc.LlamaGrammar.from_json_schema(schema, verbose=False)
        stamps: list[float] = []

        def record(_ids: Any, _logits: Any) -> bool:
            stamps.append(time.perf_counter())
            return False

        self.llm.reset()
        t0 = time.perf_counter()
        out = self.llm.create_completion(
            prompt, max_tokens=max_tokens, temperature=0.0, repeat_penalty=1.0,
            grammar=self._grammars[schema], stopping_criteria=lc.StoppingCriteriaList([record]),
        )
        t_end = time.perf_counter()
        n = int(out["usage"]["completion_tokens"])  # type: ignore[index]
        ttft, tok_s = _rates(n, t0, stamps[0] if stamps else t_end, stamps[-1] if stamps else t_end)
        choice = out["choices"][0]  # type: ignore[index]
        return {"text": choice["text"], "tokens": n, "tok_s": tok_s, "ttft_ms": ttft,
                "total_ms": (t_end - t0) * 1000.0, "finish_reason": choice["finish_reason"]}


def _prefill(model: Any, prompt: Sequence[int], chunk: int = 512) -> np.ndarray:
    model.truncate(0)
    row = np.empty(0, dtype=np.float32)
    for i in range(0, len(prompt), chunk):
        part = list(prompt[i : i + chunk])
        rows = model.eval(part, [len(part) - 1] if i + chunk >= len(prompt) else [])
        if i + chunk >= len(prompt):
            row = rows[0].copy()
    return row


def divergence(model: Any, prompt: Sequence[int], plain: Sequence[int], spec: Sequence[int],
               trace: Sequence[tuple[int, tuple[int, ...], int]]) -> dict[str, Any] | None:
    """The first token where the speculative answer leaves the plain one, evaluated again
    from an empty cache one token at a time (as plain decoding did) and in the batches of
    the speculative run. Under the grammar both tokens were allowed, so the margin that
    matters is the plain token's logit minus the speculative token's; the flip is
    *explained* when that margin is no larger than the largest difference between the
    two logit rows, and *reproduced* when the batched row prefers the speculative token."""
    j = next((i for i, (a, b) in enumerate(zip(plain, spec)) if a != b), None)
    if j is None:
        return None
    one = _prefill(model, prompt)
    for t in plain[:j]:
        one = model.eval([t], [0])[0].copy()
    target = len(prompt) + j - 1  # the position whose logits chose token j
    batched = _prefill(model, prompt)
    if j > 0:
        for start, batch, keep in trace:
            rows = model.eval(list(batch), list(range(len(batch))))
            if start <= target < keep:
                batched = rows[target - start].copy()
                break
            model.truncate(keep)
    model.truncate(0)
    a, b = int(plain[j]), int(spec[j])
    margin = float(one[a] - one[b])
    diff = float(np.max(np.abs(one - batched)))
    return {
        "position": j,
        "plain_token": model.piece(a).decode("utf-8", "replace"),
        "spec_token": model.piece(b).decode("utf-8", "replace"),
        "margin": round(margin, 4),
        "max_abs_logit_diff": round(diff, 4),
        "explained": margin <= diff,
        "reproduced": bool(batched[b] >= batched[a]),
    }


def valid(text: str, schema: dict[str, Any]) -> tuple[bool, str]:
    try:
        jsonschema.validate(json.loads(text), schema)
    except (ValueError, jsonschema.ValidationError) as exc:
        return False, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return True, ""


def _median(xs: Sequence[float]) -> float | None:
    return round(statistics.median(xs), 3) if xs else None


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--json", type=Path, default=None, help="write results here")
    ap.add_argument("--model", type=Path, default=None, help="GGUF file (default: the shipped model)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument("--max-tokens", type=int, default=320)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    args = ap.parse_args(argv)
    if args.model is None:
        from common.model_files import default_model_path

        args.model = default_model_path(progress=False)
    items = ITEMS[: args.limit] if args.limit else ITEMS

    t_start = time.perf_counter()
    load_start = os.getloadavg()
    runners: dict[str, Own | Peer] = {
        "own_spec": Own(args.model, args.n_ctx, args.threads, speculative=True),
        "own_plain": Own(args.model, args.n_ctx, args.threads, speculative=False),
        "peer": Peer(args.model, args.n_ctx, args.threads),
    }
    warm = json.dumps({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]})
    for runner in runners.values():
        runner.run("Reply as JSON.\nJSON: ", warm, 8)

    rows: list[dict[str, Any]] = []
    k = 0
    for i, item in enumerate(items):
        prompt, schema_text = prompt_of(item), json.dumps(item["schema"])
        runs: dict[str, list[dict[str, Any]]] = {c: [] for c in CONTENDERS}
        for _ in range(args.repeats):
            order = CONTENDERS[k % 3:] + CONTENDERS[: k % 3]
            k += 1
            for name in order:
                runs[name].append(runners[name].run(prompt, schema_text, args.max_tokens))
        own_spec, own_plain = runners["own_spec"], runners["own_plain"]
        assert isinstance(own_spec, Own) and isinstance(own_plain, Own)
        row: dict[str, Any] = {"name": item["name"], "prompt_tokens": len(own_plain.engine.tokenize_prompt(prompt))}
        for c in CONTENDERS:
            last = runs[c][-1]
            checks = [valid(r["text"], item["schema"]) for r in runs[c]]
            row[c] = {
                "tok_s": _median([r["tok_s"] for r in runs[c]]),
                "tok_s_runs": [round(r["tok_s"], 2) for r in runs[c]],
                "ttft_ms": _median([r["ttft_ms"] for r in runs[c]]),
                "total_ms": _median([r["total_ms"] for r in runs[c]]),
                "tokens": last["tokens"],
                "finish_reason": last["finish_reason"],
                "valid": all(ok for ok, _ in checks),  # every repeat's answer
                "error": next((err for ok, err in checks if not ok), ""),
                "same_text_every_repeat": all(r["text"] == last["text"] for r in runs[c]),
                "text": last["text"],  # of the last repeat
            }
        spec = runs["own_spec"]
        drafted, accepted, steps = (sum(r[f] for r in spec) for f in ("drafted", "accepted", "verify_steps"))
        row["drafted_tokens"] = drafted // len(spec)
        row["accepted_tokens"] = accepted // len(spec)
        row["acceptance"] = round(accepted / drafted, 3) if drafted else None
        row["accepted_per_step"] = round(accepted / steps, 3) if steps else 0.0
        row["identical"] = all(a["text"] == b["text"] for a, b in zip(runs["own_spec"], runs["own_plain"], strict=True))
        row["divergence"] = (
            None if own_spec.tokens == own_plain.tokens else divergence(
                own_plain.engine.model, own_plain.engine.tokenize_prompt(prompt),
                own_plain.tokens, own_spec.tokens, own_spec.trace,
            )
        )
        own_plain.engine.reset_cache()
        row["own_plain_equals_peer"] = all(
            a["text"] == b["text"] for a, b in zip(runs["own_plain"], runs["peer"], strict=True)
        )
        sp, pl, pe = (row[c]["tok_s"] or 0.0 for c in CONTENDERS)
        row["spec_vs_peer"] = round(sp / pe, 3) if pe else None
        row["spec_vs_plain"] = round(sp / pl, 3) if pl else None
        row["plain_vs_peer"] = round(pl / pe, 3) if pe else None
        rows.append(row)
        print(
            f"[{i + 1}/{len(items)}] {item['name']}: " + " ".join(f"{c}={row[c]['tok_s']:.1f}" for c in CONTENDERS)
            + f" acc/step={row['accepted_per_step']:.2f} identical={row['identical']}"
            + f" valid={[row[c]['valid'] for c in CONTENDERS]}",
            file=sys.stderr, flush=True,
        )

    def over(key: str) -> float | None:
        return _median([r[key] for r in rows if r[key] is not None])

    drafted = sum(r["drafted_tokens"] for r in rows)
    summary = {
        "prompts": len(rows),
        "spec_vs_peer": over("spec_vs_peer"),
        "spec_vs_plain": over("spec_vs_plain"),
        "plain_vs_peer": over("plain_vs_peer"),
        "acceptance": round(sum(r["accepted_tokens"] for r in rows) / drafted, 3) if drafted else None,
        "median_accepted_per_step": over("accepted_per_step"),
        "median_tok_s": {c: _median([r[c]["tok_s"] for r in rows]) for c in CONTENDERS},
        "valid": {c: sum(1 for r in rows if r[c]["valid"]) for c in CONTENDERS},
        "identical": sum(1 for r in rows if r["identical"]),
        "divergences": sum(1 for r in rows if r["divergence"] is not None),
        "unexplained_divergences": sum(
            1 for r in rows if r["divergence"] is not None and not r["divergence"]["explained"]
        ),
        "unstable_across_repeats": {
            c: sum(1 for r in rows if not r[c]["same_text_every_repeat"]) for c in CONTENDERS
        },
        "own_plain_equals_peer": sum(1 for r in rows if r["own_plain_equals_peer"]),
    }
    result = {
        "benchmark": "json_extraction",
        "model": args.model.name,
        "threads": args.threads,
        "n_ctx": args.n_ctx,
        "max_tokens": args.max_tokens,
        "repeats": args.repeats,
        "machine": {
            "cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "load_avg_1m_start": round(load_start[0], 2), "load_avg_1m_end": round(os.getloadavg()[0], 2),
        },
        "tok_s_definition": "(completion_tokens - 1) / (end of the last decoding step - time of first token)",
        "elapsed_s": round(time.perf_counter() - t_start, 1),
        "run_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "summary": summary,
        "prompts": rows,
    }

    print(f"{'prompt':16} " + " ".join(f"{c:>9}" for c in CONTENDERS)
          + "  spec/peer spec/plain  accept acc/step  valid  same")
    for r in rows:
        print(f"{r['name']:16} " + " ".join(f"{r[c]['tok_s']:9.1f}" for c in CONTENDERS)
              + f"  {r['spec_vs_peer'] or 0:9.2f} {r['spec_vs_plain'] or 0:10.2f}  {r['acceptance'] or 0:6.2f}"
              + f" {r['accepted_per_step']:8.2f}  {''.join('y' if r[c]['valid'] else 'n' for c in CONTENDERS):>5}"
              + f"  {'yes' if r['identical'] else 'no'}")
    s = summary
    print(f"\noverall (median over prompts): spec/peer {s['spec_vs_peer']:.2f}x, spec/plain {s['spec_vs_plain']:.2f}x, "
          f"plain/peer {s['plain_vs_peer']:.2f}x; acceptance {s['acceptance']}, accepted/step {s['median_accepted_per_step']}; "
          f"valid {s['valid']}; spec == plain on {s['identical']}/{s['prompts']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
