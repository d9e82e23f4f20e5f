"""How much of the author's filing does the ranking save? Issue 18, point 6.

    .venv/bin/python bench/tally_triage.py                  # bench/tally_data, both embedders
    .venv/bin/python bench/tally_triage.py --embedder lexical --limit 100   # a quick run
    .venv/bin/python bench/tally_triage.py --data PATH.jsonl --json

Replays labelled comments in arrival order with an author who files each one as labelled,
through the code the moderation pages use: a real TinyDB store in a temporary folder, each
comment stored with ``store.add_comment``, ranked with ``tally.ranking.rank`` (what the page
shows beside the reply box, and what it preselects), then filed with
``tally.filing.file_comment``: under the request already started for its label, as "new" (with
the label) for a label's first comment, or as "none" when it asks for nothing.

Data: a JSONL file, one comment a line, in arrival order: ``id``, ``person`` (who wrote it: the
people a request counts), ``text``, ``request`` (a label; null when it asks for nothing) and,
optionally, ``question`` (the reflection question it answers), ``thread`` and ``split``. By
default bench/tally_data/comments.json, converted on the fly (person = reader_key, text = body)
and shuffled with a fixed seed, since that file lists each request's comments together.
``--seed N`` shuffles any data with another seed (one order is one sample: see docs/TALLY.md).

Printed per embedder, for all comments and for the "test" split alone (the held-out half of
bench/tally_data; nothing in ranking.py was tuned on either half):

- of the comments that join a request filed before, the share whose request is ranked 1st, in
  the first 3, in the first 5 (the page shows five);
- keystrokes per comment, starting from the preselected choice: 0 when it is the right one; 1
  to pick one of the five shown, or "new" or "none", when nothing is preselected; 3 otherwise
  (a wrong preselection to notice and undo, or a request that is not among the five to find);
- wrong preselections per comment;
- encoding time per comment (median ms of the embedder's calls while ranking it), and the time
  of the whole ranking, the page's part, early and late in the stream.

Targets (issue 18): first 5 >= 0.95, first 1 >= 0.75, <= 0.5 keystrokes per comment, wrong
preselections <= 2 %; each is printed with the measured value's ratio to it.

"Not a request" is preselected as ranking.py does: when no request is and the request detector
finds none in the comment, once the site's filings show the detector right >= 95 % of the time.
"""

from __future__ import annotations

import argparse
import html
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from comments_service.models import Comment, CommentState  # noqa: E402
from comments_service.store.factory import open_store  # noqa: E402
from comments_service.tally import filing, ranking  # noqa: E402
from comments_service.tally.grouper import (  # noqa: E402
    LexicalEmbedder,
    MiniLMEmbedder,
)
from comments_service.tally.groups import LABEL_LIMIT  # noqa: E402

DATA = ROOT / "bench" / "tally_data" / "comments.json"
DEFAULT_SEED = 0
THREAD = "triage-bench"  # for comments whose data names no thread
START = datetime(2025, 1, 1, tzinfo=UTC)
EARLY_LATE = 50  # comments at each end of the stream whose ranking time is compared

# name, how the measured value compares with the target, the target
TARGETS = (
    ("first 5", ">=", 0.95),
    ("first 1", ">=", 0.75),
    ("keystrokes per comment", "<=", 0.5),
    ("wrong preselections per comment", "<=", 0.02),
)


@dataclass(frozen=True)
class Row:
    """One labelled comment, as the bench replays it."""

    id: str
    person: str | None
    text: str
    request: str | None
    question: str | None = None
    thread: str = THREAD
    split: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What the page showed for one comment, and what filing it as labelled cost."""

    row: Row
    kind: str  # "join" (a request filed before), "new" (a label's first comment), "none"
    position: int | None  # 1-based rank of the right request among the suggestions ("join")
    preselected: str | None
    right: str  # the right choice: a request id, "new" or "none"
    keystrokes: int
    encode_ms: float
    rank_ms: float


# --- data ------------------------------------------------------------------------------------


def default_rows() -> list[Row]:
    """bench/tally_data/comments.json as rows (person = reader_key, text = body), file order."""
    comments = json.loads(DATA.read_text(encoding="utf-8"))
    return [Row(id=c["id"], person=c["reader_key"], text=c["body"], request=c["request"],
                question=c["question"], thread=c["thread"], split=c["split"])
            for c in comments]


def jsonl_rows(path: Path) -> list[Row]:
    """The rows of a JSONL file, in file order; SystemExit naming the line of a bad one."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            missing = [name for name in ("id", "person", "text", "request") if name not in record]
            if missing:
                raise ValueError(f"missing {', '.join(missing)}")
            rows.append(Row(id=str(record["id"]), person=record["person"], text=record["text"],
                            request=record["request"] or None,
                            question=record.get("question"),
                            thread=record.get("thread") or THREAD, split=record.get("split")))
        except ValueError as error:  # json.JSONDecodeError is a ValueError
            raise SystemExit(f"{path}:{number}: not a labelled comment ({error})") from None
    return rows


def load(data: str | None, seed: int | None, limit: int | None
         ) -> tuple[list[Row], int | None]:
    """The comments to replay in arrival order (the first ``limit``), and the seed used."""
    rows = default_rows() if data is None else jsonl_rows(Path(data))
    if data is None and seed is None:
        seed = DEFAULT_SEED  # comments.json lists each request's comments together
    if seed is not None:
        random.Random(f"tally-triage-{seed}").shuffle(rows)
    return (rows[:limit] if limit is not None else rows), seed


# --- the replay ------------------------------------------------------------------------------


class TimedEmbedder:
    """The embedder the ranking is given, timing each of its calls (same name: same caches)."""

    def __init__(self, embedder: Any) -> None:
        self.embedder, self.name = embedder, embedder.name
        self.vector_key = getattr(embedder, "vector_key", None)  # kept in the store if set
        self.calls_ms: list[float] = []

    def encode(self, texts: Sequence[str]) -> list[Any]:
        started = time.perf_counter()
        vectors = self.embedder.encode(texts)
        if texts:
            self.calls_ms.append((time.perf_counter() - started) * 1000)
        return vectors


def stored_comment(store: Any, row: Row, position: int) -> Comment:
    """The reader's comment as the service would keep it, arriving a minute after the last."""
    return store.add_comment(Comment(
        id=f"c{position:06d}", thread=row.thread, name=row.person or "Reader", body=row.text,
        html=f"<p>{html.escape(row.text)}</p>", created=(START + timedelta(minutes=position))
        .isoformat(timespec="microseconds"), state=CommentState.AWAITING_REPLY, public=True,
        question=row.question, reader_key=row.person))


def keystrokes(right: str, preselected: str | None, position: int | None) -> int:
    """From the preselected choice to the right one (see the module docstring)."""
    if preselected is not None:
        return 0 if preselected == right else 3
    if right in (filing.NEW, filing.NONE):
        return 1
    return 1 if position is not None and position <= ranking.MAX_SUGGESTIONS else 3


def replay(rows: Sequence[Row], embedder: Any, progress: bool = False) -> list[Outcome]:
    """File every row as labelled, through a fresh store; what each one cost."""
    timed = TimedEmbedder(embedder)
    requests: dict[str, str] = {}  # label → the request filed for its first comment
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="tally-triage-") as folder:
        store = open_store(folder)
        for position, row in enumerate(rows):
            comment = stored_comment(store, row, position)
            timed.calls_ms.clear()
            started = time.perf_counter()
            ranked = ranking.rank(store, comment, timed)
            rank_ms = (time.perf_counter() - started) * 1000
            if row.request is None:
                kind, right = "none", filing.NONE
            elif row.request in requests:
                kind, right = "join", requests[row.request]
            else:
                kind, right = "new", filing.NEW
            ids = [suggestion.id for suggestion in ranked.suggestions]
            place = ids.index(right) + 1 if right in ids else None
            label = row.request and " ".join(row.request.split())[:LABEL_LIMIT]
            filed = filing.file_comment(store, comment.id, right, label)
            if kind == "new":
                assert filed.request is not None
                requests[row.request] = filed.request.id  # type: ignore[index]
            outcomes.append(Outcome(
                row, kind, place, ranked.preselected, right,
                keystrokes(right, ranked.preselected, place), sum(timed.calls_ms), rank_ms))
            if progress and (position + 1) % 100 == 0:
                print(f"  {embedder.name}: {position + 1} of {len(rows)} comments filed",
                      file=sys.stderr)
    return outcomes


# --- the scores ------------------------------------------------------------------------------


def scores(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """The numbers the bench prints, for these outcomes."""
    joins = [outcome for outcome in outcomes if outcome.kind == "join"]

    def within(limit: int) -> float | None:
        if not joins:
            return None
        return sum(o.position is not None and o.position <= limit for o in joins) / len(joins)

    count = len(outcomes)
    preselected = [outcome for outcome in outcomes if outcome.preselected is not None]
    wrong = sum(outcome.preselected != outcome.right for outcome in preselected)
    encode = [outcome.encode_ms for outcome in outcomes if outcome.encode_ms]
    return {
        "comments": count,
        "joins": len(joins),
        "new": sum(outcome.kind == "new" for outcome in outcomes),
        "none": sum(outcome.kind == "none" for outcome in outcomes),
        "first 1": within(1),
        "first 3": within(3),
        "first 5": within(5),
        "keystrokes per comment": (sum(o.keystrokes for o in outcomes) / count
                                   if count else None),
        "keystrokes by kind": {kind: sum(o.keystrokes for o in outcomes if o.kind == kind)
                               for kind in ("join", "new", "none")},
        "preselected": len(preselected),
        "wrong preselections": wrong,
        "wrong preselections per comment": wrong / count if count else None,
        "encode ms median": statistics.median(encode) if encode else None,
    }


def timing(outcomes: Sequence[Outcome]) -> dict[str, float]:
    """The ranking's time per comment (ms): median, early and late in the stream, total."""
    times = [outcome.rank_ms for outcome in outcomes]
    return {"rank ms median": statistics.median(times),
            "rank ms first": statistics.median(times[:EARLY_LATE]),
            "rank ms last": statistics.median(times[-EARLY_LATE:]),
            "rank s total": sum(times) / 1000}


def target_ratios(numbers: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target with the measured value, its ratio to the target and whether it is met."""
    out = {}
    for name, sense, target in TARGETS:
        value = numbers[name]
        if value is None:
            out[name] = {"target": f"{sense} {target}", "value": None, "ratio": None,
                         "met": None}
            continue
        met = value >= target if sense == ">=" else value <= target
        out[name] = {"target": f"{sense} {target}", "value": value,
                     "ratio": value / target, "met": met}
    return out


def report(name: str, outcomes: Sequence[Outcome]) -> dict[str, Any]:
    def halves(some: Sequence[Outcome]) -> dict[str, Any]:
        out = {"all": scores(some)}
        test = [outcome for outcome in some if outcome.row.split == "test"]
        if test:
            out["test"] = scores(test)
        return out

    result: dict[str, Any] = {**halves(outcomes), **timing(outcomes)}
    result["targets"] = {half: target_ratios(result[half]) for half in ("all", "test")
                         if half in result}
    result["first preselection at comment"] = next(
        (number for number, o in enumerate(outcomes, start=1) if o.preselected is not None),
        None)
    result["embedder"] = name
    return result


def show(value: Any, places: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{places}f}" if isinstance(value, float) else str(value)


def print_report(result: dict[str, Any]) -> None:
    halves = ["all"] + (["test"] if "test" in result else [])
    print(f"\n{result['embedder']}")
    header = f"  {'':<34}" + "".join(f"{half:>8}" for half in halves)
    header += f"  {'target':>9}" + "".join(f"{'ratio ' + half:>12}" for half in halves)
    print(header)
    rows = ("first 1", "first 3", "first 5", "keystrokes per comment",
            "wrong preselections per comment", "encode ms median")
    for name in rows:
        line = f"  {name:<34}" + "".join(
            f"{show(result[half][name], 1 if 'ms' in name else 3):>8}" for half in halves)
        if name in result["targets"]["all"]:
            target = result["targets"]["all"][name]["target"]
            line += f"  {target:>9}"
            for half in halves:
                check = result["targets"][half][name]
                mark = "" if check["met"] is None else (" ok" if check["met"] else " no")
                line += f"{show(check['ratio']) + mark:>12}"
        print(line)
    for half in halves:
        numbers = result[half]
        by_kind = numbers["keystrokes by kind"]
        print(f"  {half}: {numbers['comments']} comments ({numbers['joins']} join a request, "
              f"{numbers['new']} start one, {numbers['none']} ask for nothing); "
              f"{numbers['preselected']} preselected, {numbers['wrong preselections']} wrong; "
              f"keystrokes {by_kind['join']} + {by_kind['new']} + {by_kind['none']}")
    print(f"  first preselection at comment {show(result['first preselection at comment'])}")
    print(f"  ranking one comment: median {result['rank ms median']:.1f} ms, "
          f"{result['rank ms first']:.1f} ms over the first {EARLY_LATE} and "
          f"{result['rank ms last']:.1f} ms over the last {EARLY_LATE}; "
          f"{result['rank s total']:.1f} s in all")


def embedders(choice: str) -> list[Any]:
    names = ["lexical", "minilm"] if choice == "both" else [choice]
    out = []
    for name in names:
        if name == "minilm" and not MiniLMEmbedder.available():
            print("minilm skipped: the packaged model is not installed (make install)",
                  file=sys.stderr)
            continue
        out.append(MiniLMEmbedder() if name == "minilm" else LexicalEmbedder())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="a labelled JSONL file (default: bench/tally_data)")
    parser.add_argument("--embedder", choices=("lexical", "minilm", "both"), default="both")
    parser.add_argument("--limit", type=int, help="replay only the first N comments")
    parser.add_argument("--seed", type=int,
                        help=f"shuffle the comments with this seed (default data: "
                             f"{DEFAULT_SEED}; a file given with --data: its own order)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args()
    rows, seed = load(args.data, args.seed, args.limit)
    order = "file order" if seed is None else f"shuffled with seed {seed}"
    if not rows:
        raise SystemExit("no comments to replay")
    source = args.data or str(DATA.relative_to(ROOT))
    results = []
    for embedder in embedders(args.embedder):
        started = time.perf_counter()
        outcomes = replay(rows, embedder, progress=not args.json)
        result = report(embedder.name, outcomes)
        result["replay s"] = time.perf_counter() - started
        results.append(result)
        if not args.json:
            if len(results) == 1:
                print(f"{len(rows)} comments from {source} ({order}), filed as they arrive")
            print_report(result)
            print(f"  replay: {result['replay s']:.1f} s")
    if args.json:
        print(json.dumps({"data": source, "comments": len(rows), "seed": seed,
                          "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
