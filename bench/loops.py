"""How often the embedded model runs away: answers that end at the length cap in a loop.

Issue 21: with no repetition control, SmolLM2 repeated "Title: [Title] Body: [Body] …" to the
end of its context on a plain builder description. This runs a fixed set of everyday prompts
(chat, builder descriptions, RAG-style questions) through the embedded model directly (no
server: the sampler is what is measured) at the default answer length, under several
repetition settings, and reports for each the share of answers that

* hit the length cap (``finish == "length"``), and
* hit it *in a loop*: the cap was reached and the answer's tail repeats a span (``looped``).

    PYTHONPATH=src .venv/bin/python bench/loops.py              # every setting, greedy and t=0.7
    PYTHONPATH=src .venv/bin/python bench/loops.py --only default

docs/benchmarks.md ("Loops") has the results and the defaults chosen from them.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import time

from hubbub.core.events import Finish, TextDelta
from hubbub.core.types import Message, ProviderRequest, SamplingParams
from hubbub.providers.embedded import EmbeddedProvider
from hubbub.providers.sampling import Repetition
from hubbub.settings import EmbeddedConfig

SYSTEM = "You are a helpful assistant."
BUILDER_SYSTEM = ("You help the user design the data model of an app. Describe the entities, their fields and "
                  "how they relate, in plain words.")
PASSAGE = ("Hubbub is a self-hosted chat server. It speaks five APIs: OpenAI chat completions, Anthropic "
           "messages, the Responses API, bento and the conversations API. It stores chats in SQLite or "
           "PostgreSQL and can use Redis to share streams between replicas. Documents uploaded to it are "
           "split into chunks and searched with BM25; a dense embedder can be configured.")

CHAT = [
    "Hi! How are you today?",
    "What is the capital of France?",
    "Give me three tips for sleeping better.",
    "Write a short poem about the sea.",
    "Explain what a database index is in simple words.",
    "How do I boil an egg?",
    "What's the difference between a list and a tuple in Python?",
    "Suggest a name for a small bakery.",
    "Summarize the plot of Romeo and Juliet in two sentences.",
    "How many days are there in a leap year?",
    "Write a haiku about autumn.",
    "What should I pack for a weekend hiking trip?",
    "Translate 'good morning' into Spanish and German.",
    "Why is the sky blue?",
    "Give me a recipe for pancakes.",
]
BUILDER = [
    "I need a blog with posts, authors and comments. Posts have a title, a body and tags.",
    "I want an app to track my books: each book has a title, an author, a year and a rating.",
    "A todo app with projects and tasks. Tasks have a due date and a priority.",
    "An online shop: products with a name, a price and a stock count; customers place orders of products.",
    "A recipe site where recipes have ingredients, steps and a cooking time.",
    "I run a gym. Members book classes; each class has a trainer, a room and a time.",
    "A library system with books, members and loans. A loan has a start date and a due date.",
    "An event planner: events have a venue, a date and a list of guests who can RSVP.",
    "A school app with students, teachers, courses and grades.",
    "A simple CRM: companies, contacts at those companies, and deals with an amount and a stage.",
]
RAG = [
    "Which databases can hubbub store chats in?",
    "How many APIs does hubbub speak? List them.",
    "What is Redis used for in hubbub?",
    "How are uploaded documents searched?",
    "Is hubbub hosted by a company or self-hosted?",
    "Can hubbub use embeddings for search?",
]


def conversations() -> list[tuple[str, list[Message]]]:
    out = [("chat", [Message("system", SYSTEM), Message("user", p)]) for p in CHAT]
    out += [("builder", [Message("system", BUILDER_SYSTEM), Message("user", p)]) for p in BUILDER]
    out += [("rag", [Message("system", f"{SYSTEM}\n\nAnswer from these documents:\n\n{PASSAGE}"),
                     Message("user", p)]) for p in RAG]
    return out


def looped(text: str, span: int = 24, times: int = 3, tail_chars: int = 600) -> bool:
    """Does the answer's tail repeat itself: some ``span``-character piece of its last
    ``tail_chars`` characters occurs there at least ``times`` times (not overlapping)?"""
    tail = text[-tail_chars:]
    return any(tail[i:i + span].strip() and tail.count(tail[i:i + span]) >= times
               for i in range(0, max(len(tail) - span + 1, 0)))


SETTINGS = {
    "off": Repetition(),
    "repeat 1.1": Repetition(repeat_penalty=1.1, penalty_last_n=64),
    "repeat 1.15": Repetition(repeat_penalty=1.15, penalty_last_n=64),
    "presence 0.5": Repetition(presence_penalty=0.5, penalty_last_n=256),
    "dry 0.8": Repetition(dry_multiplier=0.8),
    "dry 0.8 + repeat 1.1": Repetition(repeat_penalty=1.1, penalty_last_n=64, dry_multiplier=0.8),
    "dry 0.8 + repeat 1.15": Repetition(repeat_penalty=1.15, penalty_last_n=64, dry_multiplier=0.8),
}


async def run(provider: EmbeddedProvider, rep: Repetition, temperature: float, max_tokens: int) -> dict:
    provider.model.repetition = rep
    convs = conversations()

    async def one(i: int, messages: list[Message]) -> tuple[str, str]:
        params = SamplingParams(temperature=temperature, max_tokens=max_tokens, seed=1000 + i)
        text, finish = [], "stop"
        async for event in provider.stream(ProviderRequest("embedded", messages, params)):
            if isinstance(event, TextDelta):
                text.append(event.text)
            elif isinstance(event, Finish):
                finish = event.reason
        return "".join(text), finish

    started = time.perf_counter()
    results = await asyncio.gather(*(one(i, m) for i, (_, m) in enumerate(convs)))
    capped = [f == "length" for _, f in results]
    loops = [c and looped(t) for (t, _), c in zip(results, capped)]
    by_kind: dict[str, list[bool]] = {}
    for (kind, _), loop in zip(convs, loops):
        by_kind.setdefault(kind, []).append(loop)
    return {
        "prompts": len(results), "capped": sum(capped), "looped": sum(loops),
        "by_kind": {k: f"{sum(v)}/{len(v)}" for k, v in by_kind.items()},
        "mean_chars": round(sum(len(t) for t, _ in results) / len(results)),
        "seconds": round(time.perf_counter() - started, 1),
        "looped_answers": [t[-200:] for (t, _), loop in zip(results, loops) if loop][:3],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="settings to run, comma-separated: keys of SETTINGS, or 'default' (EmbeddedConfig's)")
    parser.add_argument("--temperatures", default="0,0.7")
    parser.add_argument("--max-tokens", type=int, default=EmbeddedConfig().default_max_tokens)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    config = EmbeddedConfig(n_ctx=2048, n_threads=args.threads)
    provider = await EmbeddedProvider.load(config)
    settings = dict(SETTINGS)
    settings["default"] = provider.model.repetition
    names = args.only.split(",") if args.only else list(settings)
    print(f"{len(conversations())} prompts, max_tokens {args.max_tokens}", file=sys.stderr)
    print("| setting | temperature | capped | capped in a loop | chat | builder | rag | s |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        for t in (float(x) for x in args.temperatures.split(",")):
            r = await run(provider, settings[name], t, args.max_tokens)
            n = r["prompts"]
            print(f"| {name} | {t:g} | {r['capped']}/{n} | {r['looped']}/{n} ({100 * r['looped'] / n:.0f}%) | "
                  f"{r['by_kind']['chat']} | {r['by_kind']['builder']} | {r['by_kind']['rag']} | {r['seconds']} |",
                  flush=True)
            if r["looped_answers"]:
                print(json.dumps({"setting": name, "t": t, "tails": r["looped_answers"]}), file=sys.stderr)
    print(json.dumps(dataclasses.asdict(settings["default"])), file=sys.stderr)
    await provider.aclose()


if __name__ == "__main__":
    asyncio.run(main())
