"""DSL extraction quality: entity and relationship precision/recall on app descriptions.

Each case of an evaluation set (``bench/dsl_eval.json``: 30 descriptions of one
to three turns, with the entities and relationships a careful engineer would
expect) is run turn by turn through the real extractor — the same
``DslExtractor.extract`` the server runs after each builder turn — with the
embedded SmolLM2-135M model proposing under its JSON schema. Scores:

* entities: a predicted entity matches an expected one by name (or one of the
  case's ``aliases``, e.g. ``User`` for an expected ``Author``);
* relationships: matched as (from, kind, to) after mapping names the same way,
  with one-to-many read as many-to-one from the other side and many-to-many /
  one-to-one unordered. ``links`` ignores the kind (any link between the pair).

Targets: entity recall >= 0.9, precision >= 0.8, relationship recall >= 0.7 on ``eval``
(issue 7) and on ``holdout7`` (issue 20), and relationship recall >= 0.7 on ``holdout3``.
Which sets were seen while developing the analysis, and which phrasing families each
covers, is in docs/dsl.md ("Quality"); ``holdout7`` was written by someone who never read the
analysis code or its tests, committed before the fourth round of issue 20 changed it, and scored
at the end.

    .venv/bin/python bench/dsl_quality.py [--sets eval,holdout,holdout2,holdout3,dev,holdout4,holdout5,holdout6,holdout7]
        [--no-model]
        [--max-tokens 300] [--timeout 10] [--pg postgresql://postgres@127.0.0.1:5432/test] [--json out.json]
        [--upstream https://host/v1 --upstream-model M --upstream-key-env VAR] [--replay FILE|'']

Every set is printed in one run, with the embedded model (or the analysis alone with
``--no-model``). A strong model leads when present: ``--upstream`` runs every set again
with a JSON-schema-capable upstream as the turn's model; ``--replay`` (on by default) runs
the recorded proposals of ``dsl_strong_recorded.json`` through ``tests/dsl/replay_upstream.py``,
a real upstream process, to show the strong path (those proposals are hand-written, so that
row shows the path working, not a model's quality).

``--latency N`` times what the user waits between the last text event and the ``dsl``
event, through the hook as the server runs it (``before_turn``, the embedded model's
answer, ``after_turn``), with the extraction started before the answer and after it.

``--pg`` also runs every final DSL's SQL export on PostgreSQL (each in its own
schema, dropped afterwards) and counts failures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SETS = {"eval": "dsl_eval.json", "holdout": "dsl_eval_holdout.json", "holdout2": "dsl_eval_holdout2.json",
        "holdout3": "dsl_eval_holdout3.json", "dev": "dsl_eval_dev.json", "holdout4": "dsl_eval_holdout4.json",
        "holdout5": "dsl_eval_holdout5.json", "holdout6": "dsl_eval_holdout6.json",
        "holdout7": "dsl_eval_holdout7.json"}
TARGET = {"entity_recall": 0.9, "entity_precision": 0.8, "relationship_recall": 0.7}
# Issue 7's targets on its evaluation set; issue 20's on the never-tuned set (holdout7 since the fourth
# round: holdout4, holdout5 and holdout6 were each scored once at the end of a round and developed on after),
# and relationship recall on holdout3 (never tuned when it was written; the structural rules were developed on it).
TARGETS = {"eval": TARGET, "holdout7": TARGET, "holdout3": {"relationship_recall": 0.7}}


def load(name: str) -> list[dict[str, Any]]:
    return json.loads((HERE / SETS[name]).read_text())


def canonical(source: str, kind: str, target: str) -> tuple[str, str, str]:
    if kind == "one-to-many":
        source, target, kind = target, source, "many-to-one"
    if kind in ("many-to-many", "one-to-one"):
        source, target = sorted((source, target))
    return source, kind, target


def score_case(case: dict[str, Any], dsl: dict[str, Any]) -> dict[str, Any]:
    """Matches of one predicted DSL (wire form) against the case's expectations.

    An expected many-to-many ``A``-``B`` is also met by a join entity: a predicted ``J`` with
    many-to-one links to both ``A`` and ``B`` (one to ``A`` for a self-link), the usual way to
    store one; its two links then count as one prediction."""
    expected = set(case["entities"])
    alias = {a: name for name, names in case.get("aliases", {}).items() for a in names}

    def mapped(name: str) -> str:
        return name if name in expected else alias.get(name, name)

    predicted = {mapped(n) for n in dsl["entities"]}
    rels = {canonical(mapped(r["from"]), r["type"], mapped(r["to"])) for r in dsl["relationships"]}
    want = {canonical(*r) for r in case["relationships"]}
    hits, joined = _joins(rels, want)
    links = {tuple(sorted((a, b))) for a, _, b in rels}
    want_links = {tuple(sorted((a, b))) for a, _, b in want}
    link_hits = len(links & want_links) + len({(a, b) for a, _, b in joined if (a, b) not in links})
    join_links = {tuple(sorted(p)) for a, _, b in joined for p in _join_pairs(rels, a, b)} - want_links
    return {
        "entities": (len(predicted & expected), len(predicted), len(expected)),
        "relationships": (len(hits), len(rels) - len(_join_rels(rels, joined)) + len(joined), len(want)),
        "links": (link_hits, len(links) - len(join_links) + len(joined), len(want_links)),
        "missing": sorted(expected - predicted), "extra": sorted(predicted - expected),
        "missing_relationships": sorted(want - hits),
    }


def _join_pairs(rels: set[tuple[str, str, str]], a: str, b: str) -> list[tuple[str, str]]:
    """The (J, A), (J, B) pairs of the first join entity J between ``a`` and ``b``, or []."""
    parents: dict[str, set[str]] = {}
    for source, kind, target in rels:
        if kind == "many-to-one" and source != target:
            parents.setdefault(source, set()).add(target)
    for j in sorted(parents):
        if j not in (a, b) and {a, b} <= parents[j]:
            return [(j, a), (j, b)] if a != b else [(j, a)]
    return []


def _joins(rels: set[tuple[str, str, str]], want: set[tuple[str, str, str]]) -> tuple[set, set]:
    """(expected relationships met, the expected many-to-many met only through a join entity)."""
    hits = rels & want
    joined = {w for w in want - hits if w[1] == "many-to-many" and _join_pairs(rels, w[0], w[2])}
    return hits | joined, joined


def _join_rels(rels: set[tuple[str, str, str]], joined: set) -> set[tuple[str, str, str]]:
    """The predicted links that make up the joins in ``joined`` (and are not expected themselves)."""
    return {(j, "many-to-one", x) for a, _, b in joined for j, x in _join_pairs(rels, a, b)}


def ratio(hit: int, total: int) -> float:
    return hit / total if total else 1.0


def summarize(scores: list[dict[str, Any]]) -> dict[str, float]:
    out = {}
    for key, label in (("entities", "entity"), ("relationships", "relationship"), ("links", "link")):
        hit = sum(s[key][0] for s in scores)
        out[f"{label}_precision"] = round(ratio(hit, sum(s[key][1] for s in scores)), 3)
        out[f"{label}_recall"] = round(ratio(hit, sum(s[key][2] for s in scores)), 3)
    return out


async def run_case(extractor: Any, entry: Any, case: dict[str, Any]) -> tuple[dict[str, Any], float, float]:
    """The case's turns through ``extractor.extract``; returns (final DSL, seconds, confidence)."""
    from hubbub.core.types import Message

    messages: list[Message] = []
    dsl, phase = None, None
    started = time.perf_counter()
    for turn in case["turns"]:
        messages += [Message("user", turn), Message("assistant", "Noted.")]
        result = await extractor.extract(dsl, phase, messages, entry)
        dsl, phase = result.dsl, result.dsl.phase
    assert dsl is not None
    return dsl.to_dict(), time.perf_counter() - started, dsl.confidence


async def run_sql(pg: str, ddl: str) -> str | None:
    import asyncpg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(pg)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        await conn.execute(f'SET search_path TO "{schema}"')
        await conn.execute(ddl)
        return None
    except Exception as exc:  # reported, not raised: the benchmark counts failures
        return f"{type(exc).__name__}: {exc}"
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def run_set(name: str, extractor: Any, entry: Any, args: argparse.Namespace, label: str) -> dict[str, Any]:
    """One set through one configuration: its summary line, targets and per-case scores."""
    from hubbub.dsl.export import sql
    from hubbub.dsl.schema import Dsl

    cases = load(name)
    scores, seconds, sql_failures = [], [], []
    for case in cases:
        dsl, took, _ = await run_case(extractor, entry, case)
        s = score_case(case, dsl)
        s["id"], s["seconds"] = case["id"], round(took, 2)
        scores.append(s)
        seconds.append(took)
        if args.pg:
            error = await run_sql(args.pg, sql(Dsl.from_dict(dsl)))
            if error:
                sql_failures.append((case["id"], error))
        if args.verbose and (s["missing"] or s["extra"] or s["missing_relationships"]):
            print(f"  {case['id']}: missing {s['missing']} extra {s['extra']} "
                  f"missing links {s['missing_relationships']}")
    summary = summarize(scores)
    line = (f"{name:9s} {label:10s} n={len(cases):2d}  entities P={summary['entity_precision']:.2f} "
            f"R={summary['entity_recall']:.2f}  relationships P={summary['relationship_precision']:.2f} "
            f"R={summary['relationship_recall']:.2f}  links P={summary['link_precision']:.2f} "
            f"R={summary['link_recall']:.2f}  {sum(seconds) / len(cases):.1f}s/case")
    if args.pg:
        line += f"  sql failures={len(sql_failures)}"
    print(line, flush=True)
    for case_id, error in sql_failures:
        print(f"  SQL failed for {case_id}: {error}")
    return {"cases": len(cases), **summary, "seconds_per_case": round(sum(seconds) / len(cases), 2),
            "sql_failures": sql_failures if args.pg else None, "per_case": scores}


async def start_replay(recorded: Path) -> tuple[asyncio.subprocess.Process, str]:
    """tests/dsl/replay_upstream.py on a free port: the recorded proposals as an upstream."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE.parent / "tests" / "dsl" / "replay_upstream.py"), "--replies", str(recorded),
        stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    if not line.startswith("ready "):
        proc.kill()
        raise RuntimeError(f"replay upstream did not start: {line!r}")
    return proc, f"http://127.0.0.1:{line.split()[1]}/v1"


def strong_entry(url: str, model: str, key_env: str | None) -> Any:
    import os

    from hubbub.core.types import ModelInfo
    from hubbub.providers.openai_compat import OpenAICompatProvider
    from hubbub.providers.registry import CatalogEntry
    from hubbub.settings import ProviderConfig

    provider = OpenAICompatProvider(ProviderConfig(name="strong", base_url=url),
                                    os.environ.get(key_env) if key_env else None)
    return CatalogEntry(ModelInfo(model, model, 32768), provider, model)


class _Chats:
    """The two calls the hook makes on the chat store, in memory (the benchmark has no database)."""

    def __init__(self) -> None:
        self.rows: dict[str, Any] = {}

    async def get(self, chat_id: str, owner: str | None = None) -> Any:
        return self.rows.get(chat_id)

    async def update(self, chat_id: str, **fields: Any) -> None:
        for key, value in fields.items():
            setattr(self.rows[chat_id], key, value)


async def latency(provider: Any, cases: list[dict[str, Any]], answer_tokens: int, timeout: float) -> None:
    """Seconds from the last text of an answer to the DSL, through the hook as the server runs it:
    with the extraction started before the answer (the registry given) and after it (none)."""
    from hubbub.core.events import TextDelta
    from hubbub.core.turns import TurnContext
    from hubbub.core.types import Conversation, Message, ModelInfo, ProviderRequest, SamplingParams
    from hubbub.dsl.extractor import DslExtractor
    from hubbub.providers.registry import ModelRegistry
    from hubbub.settings import EMBEDDED_MODEL_ID

    registry = ModelRegistry(EMBEDDED_MODEL_ID)
    registry.register(ModelInfo(EMBEDDED_MODEL_ID, "embedded", 4096), provider)
    entry = registry.get(EMBEDDED_MODEL_ID)
    for mode in ("early", "after"):
        chats = _Chats()
        hook = DslExtractor(chats, timeout=timeout, registry=registry if mode == "early" else None)  # type: ignore[arg-type]
        gaps, answers = [], []
        for case in cases:
            conv = Conversation(id=f"chat_{case['id']}", kind="chat", model=EMBEDDED_MODEL_ID)
            chats.rows[conv.id] = conv
            options = {"enable_dsl": True}
            messages = [Message("user", case["turns"][0])]
            extra = await hook.before_turn(conv, messages, options)
            request = ProviderRequest(EMBEDDED_MODEL_ID, extra + messages,
                                      SamplingParams(temperature=0.0, max_tokens=answer_tokens))
            started = time.perf_counter()
            text = "".join([e.text async for e in provider.stream(request) if isinstance(e, TextDelta)])
            ended = time.perf_counter()
            await hook.after_turn(TurnContext(conv, [*messages, Message("assistant", text)], text, entry, options))
            gaps.append(time.perf_counter() - ended)
            answers.append(ended - started)
        print(f"latency   {mode:10s} n={len(cases):2d}  text end -> dsl: mean {sum(gaps) / len(gaps):.2f}s "
              f"max {max(gaps):.2f}s  (answers {answer_tokens} tokens max, mean {sum(answers) / len(answers):.1f}s)",
              flush=True)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--no-model", action="store_true", help="the deterministic analysis alone")
    parser.add_argument("--max-tokens", type=int, default=300)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per model proposal")
    parser.add_argument("--upstream", help="a strong OpenAI-compatible upstream (base URL, e.g. https://host/v1)")
    parser.add_argument("--upstream-model", default="gpt-4o-mini")
    parser.add_argument("--upstream-key-env", help="environment variable holding the upstream's API key")
    parser.add_argument("--replay", default=str(HERE / "dsl_strong_recorded.json"),
                        help="recorded proposals replayed as a strong upstream ('' to skip)")
    parser.add_argument("--latency", type=int, default=0, metavar="N",
                        help="also time text end -> dsl on N eval descriptions, started early and after (embedded)")
    parser.add_argument("--answer-tokens", type=int, default=256, help="answer length for --latency")
    parser.add_argument("--pg", help="PostgreSQL URL: run every SQL export there")
    parser.add_argument("--json", help="write the full results here")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each case's misses")
    args = parser.parse_args()

    from hubbub.core.types import ModelInfo
    from hubbub.dsl.extractor import DslExtractor
    from hubbub.providers.base import Capabilities
    from hubbub.providers.registry import CatalogEntry
    from hubbub.settings import EMBEDDED_MODEL_ID, EmbeddedConfig

    if args.no_model:
        class _NoModel:
            name, capabilities = "none", Capabilities()

        provider: Any = _NoModel()
    else:
        from hubbub.providers.embedded import EmbeddedProvider

        provider = await EmbeddedProvider.load(EmbeddedConfig(n_ctx=4096))
    entry = CatalogEntry(ModelInfo(EMBEDDED_MODEL_ID, "embedded", 4096), provider, EMBEDDED_MODEL_ID)
    extractor = DslExtractor(None, max_tokens=args.max_tokens, timeout=args.timeout)  # type: ignore[arg-type]
    label = "analysis" if args.no_model else "embedded"
    report: dict[str, Any] = {"model": None if args.no_model else EMBEDDED_MODEL_ID, "sets": {}, "strong": {}}
    failed_targets = False
    for name in args.sets.split(","):
        result = report["sets"][name] = await run_set(name, extractor, entry, args, label)
        for key, target in TARGETS.get(name, {}).items():
            ok = result[key] >= target
            failed_targets |= not ok
            print(f"  target {key} >= {target}: {'met' if ok else 'MISSED'} ({result[key]:.2f})")
        failed_targets |= bool(result["sql_failures"])
    if args.latency and not args.no_model:
        await latency(provider, load("eval")[: args.latency], args.answer_tokens, args.timeout)
    if not args.no_model:
        await provider.aclose()

    # A strong model leads when present: a real upstream if given, and the recorded proposals.
    if args.upstream:
        strong = strong_entry(args.upstream, args.upstream_model, args.upstream_key_env)
        try:
            for name in args.sets.split(","):
                report["strong"][name] = await run_set(name, extractor, strong, args, "strong")
        finally:
            await strong.provider.aclose()
    else:
        print("strong upstream: skipped (none given: --upstream URL --upstream-model M; none is reachable "
              "from the machine these numbers were made on)")
    if args.replay:
        recorded = Path(args.replay)
        proc, url = await start_replay(recorded)
        replayed = strong_entry(url, "replay", None)
        try:
            name = json.loads(recorded.read_text())["set"]
            report["strong"][f"{name} (replayed)"] = await run_set(name, extractor, replayed, args, "replayed")
            print(f"  (replayed: the proposals recorded in {recorded.name}, hand-written as a strong model would "
                  "answer; they show the strong path leading, not a model's quality)")
        finally:
            await replayed.provider.aclose()
            proc.terminate()
            await proc.wait()
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 1 if failed_targets else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
