"""A strong model leads when present (issue 20), through a real upstream process.

``replay_upstream.py`` is an OpenAI-compatible server (its own process, reached through
hubbub's real HTTP client) that answers the extraction's json_schema requests with the
proposals recorded in ``bench/dsl_strong_recorded.json`` for the holdout3 cases. With it
the extractor takes the strong path: the proposal is the model (plus what the user did not
remove), the analysis only fills in; the scores are those of the recorded proposals, which
``bench/dsl_quality.py --replay`` prints next to the analysis' own.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from hubbub.providers.base import Capabilities
from hubbub.core.types import Message, ModelInfo
from hubbub.dsl.extractor import DslExtractor
from hubbub.dsl.normalize import normalize
from hubbub.dsl import merge as mg
from hubbub.dsl.schema import proposal_to_dsl
from hubbub.providers.openai_compat import OpenAICompatProvider
from hubbub.providers.registry import CatalogEntry
from hubbub.settings import ProviderConfig

ROOT = Path(__file__).resolve().parents[2]
RECORDED = ROOT / "bench" / "dsl_strong_recorded.json"


def bench() -> Any:
    spec = importlib.util.spec_from_file_location("dsl_quality", ROOT / "bench" / "dsl_quality.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    log = tmp_path_factory.mktemp("replay") / "requests.jsonl"
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("replay_upstream.py")), "--replies", str(RECORDED),
         "--log", str(log)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "ready <port>", once it listens
        assert line.startswith("ready "), line
        yield f"http://127.0.0.1:{line.split()[1]}/v1", log
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class NoModel:
    name, capabilities = "none", Capabilities()


async def run(extractor: DslExtractor, entry: Any, turns: list[str]) -> Any:
    messages: list[Message] = []
    result = None
    for turn in turns:
        messages += [Message("user", turn), Message("assistant", "Noted.")]
        previous = result.dsl if result else None
        result = await extractor.extract(previous, previous.phase if previous else None, messages, entry)
    return result


async def test_the_recorded_strong_model_leads(upstream):
    url, log = upstream
    provider = OpenAICompatProvider(ProviderConfig(name="replay", base_url=url))
    strong = CatalogEntry(ModelInfo("replay-strong", "replay", 8192), provider, "replay")
    alone = CatalogEntry(ModelInfo("none", "none", 8192), NoModel(), "none")  # type: ignore[arg-type]
    extractor = DslExtractor(None)  # type: ignore[arg-type]
    assert extractor.is_strong(strong)
    recorded = json.loads(RECORDED.read_text())
    quality = bench()
    cases = {c["id"]: c for c in quality.load(recorded["set"])}
    with_model, without = [], []
    try:
        for case_id in dict.fromkeys(r["case"] for r in recorded["replies"]):
            case = cases[case_id]
            last = max((r for r in recorded["replies"] if r["case"] == case_id), key=lambda r: r["turn"])
            proposal = normalize(proposal_to_dsl(last["proposal"]))
            result = await run(extractor, strong, case["turns"])
            assert result.proposal is not None  # the upstream's answer was used
            dsl = result.dsl
            # The proposal leads: all of it is in the model, whatever the analysis read.
            assert set(proposal.entities) <= set(dsl.entities), case_id
            assert {mg.rel_key(r) for r in proposal.relationships} <= {mg.rel_key(r) for r in dsl.relationships}
            with_model.append(quality.score_case(case, dsl.to_dict()))
            without.append(quality.score_case(case, (await run(extractor, alone, case["turns"])).dsl.to_dict()))
    finally:
        await provider.aclose()
    led, analysed = quality.summarize(with_model), quality.summarize(without)
    assert led["relationship_recall"] >= analysed["relationship_recall"]
    assert led["entity_recall"] >= 0.9 and led["relationship_recall"] >= 0.9  # what the recordings say
    asked = [json.loads(line) for line in log.read_text().splitlines()]
    schema = [b for b in asked if (b.get("response_format") or {}).get("type") == "json_schema"]
    assert schema and all(b["temperature"] == 0 for b in schema)
    assert "values" in json.dumps(schema[0]["response_format"])  # the rich schema, for a strong model
    assert any("assistant: Noted." in m["content"] for b in schema for m in b["messages"])  # the whole chat
