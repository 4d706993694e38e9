"""Agent frameworks, unchanged, against hubbub with the embedded model (issue 16): the OpenAI
Agents SDK in chat-completions mode, LangChain's ``ChatOpenAI(...).bind_tools``, and the Vercel AI
SDK's ``generateText`` with ``tools`` under Node 20.

A 135M model chooses badly, so each run tells it what to do the way those frameworks let a user:
the first step must call the tool (``tool_choice`` required), the next answers (auto or none).
What is asserted is the protocol round trip (a declared tool called with schema-valid arguments,
its result sent back under the call's id, a text answer), not the model's wisdom.

The Node packages are pinned in ``agents/package.json`` and ``package-lock.json`` and installed
here from the npm registry (``npm ci``) once: a stamp in ``node_modules`` holds the hash of both
files, so a later run with the same pins reuses them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import openai
import pytest
from agents import (Agent, ModelSettings, OpenAIChatCompletionsModel, RunConfig, Runner, function_tool,
                    set_tracing_disabled)

from support import ServerThread, env_flag, start_server

EMBEDDED = "smollm2-135m-instruct"
AGENTS_DIR = Path(__file__).parent / "agents"
QUESTION = "What is the weather in Oslo?"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    set_tracing_disabled(True)  # the Agents SDK would export traces to OpenAI's servers
    server = start_server(tmp_path_factory.mktemp("agent-frameworks"), embedded={"max_sequences": 2},
                          max_tokens_cap=256)
    yield server
    server.stop()
    set_tracing_disabled(False)


# -- the OpenAI Agents SDK, chat-completions mode ---------------------------------------------

@pytest.mark.parametrize("streamed", [False, True])
async def test_the_agents_sdk_in_chat_completions_mode_runs_a_tool_to_a_final_answer(hub, streamed):
    asked: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        asked.append(city)
        return f"Sunny, 21 C in {city}"

    client = openai.AsyncOpenAI(base_url=hub.url + "/v1", api_key="unused", max_retries=0, timeout=300)
    # tool_choice required on the first turn; the SDK resets it (reset_tool_choice) once the tool ran.
    agent = Agent(name="Weather", instructions="Answer questions about the weather. Use get_weather.",
                  tools=[get_weather], model=OpenAIChatCompletionsModel(model=EMBEDDED, openai_client=client),
                  model_settings=ModelSettings(tool_choice="required", temperature=0, max_tokens=64))
    config = RunConfig(tracing_disabled=True)
    if streamed:
        result = Runner.run_streamed(agent, QUESTION, run_config=config, max_turns=4)
        async for _ in result.stream_events():
            pass
    else:
        result = await Runner.run(agent, QUESTION, run_config=config, max_turns=4)
    kinds = [item.type for item in result.new_items]
    assert kinds[:2] == ["tool_call_item", "tool_call_output_item"] and kinds[-1] == "message_output_item", kinds
    assert asked and all(isinstance(city, str) for city in asked)
    call, output = result.new_items[0].raw_item, result.new_items[1].raw_item
    assert call.name == "get_weather" and "city" in json.loads(call.arguments)
    assert output["call_id"] == call.call_id and output["output"].startswith("Sunny, 21 C in ")
    assert isinstance(result.final_output, str) and result.final_output.strip()
    await client.close()


# -- LangChain ---------------------------------------------------------------------------------

@pytest.mark.parametrize("streamed", [False, True])
async def test_langchain_bind_tools_gets_a_call_and_completes_the_round_trip(hub, streamed):
    from langchain_core.messages import AIMessage, HumanMessage
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    @tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        return f"Sunny, 21 C in {city}"

    llm = ChatOpenAI(model=EMBEDDED, base_url=hub.url + "/v1", api_key="unused", temperature=0, max_tokens=64,
                     max_retries=0, timeout=300)
    question = HumanMessage(QUESTION)
    forced = llm.bind_tools([get_weather], tool_choice="required")
    if streamed:
        first = None
        async for chunk in forced.astream([question]):
            first = chunk if first is None else first + chunk
        assert first is not None
        first = AIMessage(content=first.content, tool_calls=first.tool_calls, id=first.id)
    else:
        first = await forced.ainvoke([question])
    assert len(first.tool_calls) >= 1, first
    call = first.tool_calls[0]
    assert call["name"] == "get_weather" and isinstance(call["args"].get("city"), str) and call["id"]
    result = await get_weather.ainvoke(call)  # a ToolMessage answering that call, by its id
    assert result.tool_call_id == call["id"]
    answer = await llm.bind_tools([get_weather], tool_choice="none").ainvoke([question, first, result])
    assert isinstance(answer.content, str) and answer.content.strip() and not answer.tool_calls


# -- the Vercel AI SDK under Node --------------------------------------------------------------

def _npm_packages() -> tuple[str, str]:
    """``node`` and the installed packages of ``agents/``: ``npm ci`` from the registry when the
    stamp is missing or the pins changed. Skips (with the reason) when Node or npm is missing,
    unless CI is ``true``, where that is a failure."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = "node" if node is None else "npm"
        if env_flag("CI"):
            pytest.fail(f"{missing} is not installed, and CI=true: the Vercel AI SDK test must run in CI",
                        pytrace=False)
        pytest.skip(f"{missing} is not installed; install Node 20 (with npm) to run the Vercel AI SDK test")
    pins = hashlib.sha256(b"".join((AGENTS_DIR / name).read_bytes()
                                   for name in ("package.json", "package-lock.json"))).hexdigest()
    stamp = AGENTS_DIR / "node_modules" / ".hubbub-stamp"
    if not stamp.is_file() or stamp.read_text() != pins:
        proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=AGENTS_DIR,
                              capture_output=True, text=True, timeout=600, check=False)
        assert proc.returncode == 0, f"npm ci failed in {AGENTS_DIR}:\n{proc.stdout}\n{proc.stderr}"
        stamp.write_text(pins)
    return node, str(AGENTS_DIR)


@pytest.fixture(scope="module")
def node_packages() -> tuple[str, str]:
    return _npm_packages()


def test_the_vercel_ai_sdk_runs_a_tool_and_answers(hub, node_packages):
    node, folder = node_packages
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    assert int(version.lstrip("v").split(".")[0]) >= 20, version
    proc = subprocess.run([node, "vercel_tools.mjs"], cwd=folder, capture_output=True, text=True, timeout=300,
                          check=False, env={**os.environ, "HUBBUB_URL": hub.url, "HUBBUB_MODEL": EMBEDDED})
    assert proc.returncode == 0, f"exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    first, *rest = out["steps"]
    assert first["finishReason"] == "tool-calls" and first["toolCalls"], first
    assert all(c["name"] == "get_weather" and isinstance(c["input"]["city"], str) for c in first["toolCalls"])
    assert [r["id"] for r in first["toolResults"]] == [c["id"] for c in first["toolCalls"]]
    assert out["asked"] == [c["input"]["city"] for c in first["toolCalls"]]
    assert rest and rest[-1]["finishReason"] in ("stop", "length") and not rest[-1]["toolCalls"]
    assert out["text"].strip()
