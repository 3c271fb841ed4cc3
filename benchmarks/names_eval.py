"""Person-name recall and precision on the labelled sets in ``benchmarks/names/``.

Each set is one sentence per line with the person names in ``[brackets]``
(``tuning.txt``: what the detector was adjusted on; ``heldout.txt``: written first and
never tuned on). A name counts as caught when every letter of it is replaced by what the
redaction of that text replaces (``spans_to_redact``: the detected spans and the other
spellings of their values), with a ``person_name`` or ``contact_name`` placeholder: a
name half replaced ("Mehmet [PERSON_NAME_1]") leaks and is a miss. Precision: the share
of replaced name spans that overlap a labelled name.

Usage: python benchmarks/names_eval.py [--set heldout|tuning|all] [--misses] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.privacy import detect_pii, spans_to_redact

SETS = {name: ROOT / "benchmarks" / "names" / f"{name}.txt" for name in ("tuning", "heldout", "heldout2", "heldout3", "heldout4", "heldout5", "heldout6")}
_NAME_KINDS = ("person_name", "contact_name")
_MARK = re.compile(r"\[([^\[\]]+)\]")


@dataclass(frozen=True)
class Example:
    """One labelled sentence: its text, the names' spans, the user's contacts."""

    text: str
    names: tuple[tuple[int, int], ...]
    contacts: tuple[str, ...]


def parse_line(line: str) -> Example:
    """``contacts: A; B | text with [Names]`` (the contacts part optional)."""
    contacts: tuple[str, ...] = ()
    if line.startswith("contacts:") and "|" in line:
        head, line = line.split("|", 1)
        contacts = tuple(c.strip() for c in head[len("contacts:") :].split(";") if c.strip())
        line = line.strip()
    text, names, pos = [], [], 0
    for m in _MARK.finditer(line):
        text.append(line[pos : m.start()])
        start = sum(len(t) for t in text)
        text.append(m.group(1))
        names.append((start, start + len(m.group(1))))
        pos = m.end()
    text.append(line[pos:])
    return Example("".join(text), tuple(names), contacts)


def load(path: Path) -> list[Example]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [parse_line(ln) for ln in lines if ln.strip() and not ln.startswith("#")]


@dataclass(frozen=True)
class Score:
    names: int
    caught: int
    predicted: int
    correct: int
    misses: tuple[str, ...]
    false_alarms: tuple[str, ...]
    us_per_text: float

    @property
    def recall(self) -> float:
        return self.caught / self.names if self.names else 1.0

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 1.0


def replaced_name_spans(ex: Example) -> list[tuple[int, int]]:
    spans = detect_pii(ex.text, ex.contacts)
    (keyed,) = spans_to_redact([(ex.text, spans)])
    return sorted((s.start, s.end) for s, _ in keyed if s.kind in _NAME_KINDS)


def score(examples: list[Example]) -> Score:
    names = caught = predicted = correct = 0
    misses: list[str] = []
    false_alarms: list[str] = []
    t0 = time.perf_counter()
    got_all = [replaced_name_spans(ex) for ex in examples]
    elapsed = time.perf_counter() - t0
    for ex, got in zip(examples, got_all):
        covered = {i for a, b in got for i in range(a, b)}
        for a, b in ex.names:
            names += 1
            if all(i in covered for i in range(a, b) if ex.text[i].isalpha()):
                caught += 1
            else:
                misses.append(f"{ex.text[a:b]!r} in {ex.text!r}")
        for a, b in got:
            predicted += 1
            if any(a < y and b > x for x, y in ex.names):
                correct += 1
            else:
                false_alarms.append(f"{ex.text[a:b]!r} in {ex.text!r}")
    us = elapsed / max(1, len(examples)) * 1e6
    return Score(names, caught, predicted, correct, tuple(misses), tuple(false_alarms), us)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=[*SETS, "all"], default="all")
    ap.add_argument("--misses", action="store_true", help="list missed names and false alarms")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    detect_pii("Warm up with Ada Lovelace.")  # lists loaded before timing
    out: dict[str, object] = {}
    for name in SETS if args.set == "all" else [args.set]:
        s = score(load(SETS[name]))
        out[name] = {
            "names": s.names, "caught": s.caught, "recall": round(s.recall, 4),
            "predicted": s.predicted, "precision": round(s.precision, 4), "us_per_text": round(s.us_per_text, 1),
        }
        print(f"{name}: recall {s.recall:.3f} ({s.caught}/{s.names}), precision {s.precision:.3f} "
              f"({s.correct}/{s.predicted}), {s.us_per_text:.0f} us per text")
        if args.misses:
            for m in s.misses:
                print("  miss:", m)
            for f in s.false_alarms:
                print("  false alarm:", f)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
