"""The OpenAI Agents SDK, in its default Responses mode, against /v1/responses (issue 18): an
agent with a function tool runs to a final answer — with exact answers from the recording
upstream, and with the real embedded model.

The embedded model's tests need its tool calling (grammar-constrained calls, ``tools=True`` in its
capabilities): until that lands they fail with the 400 that refuses tools for a model without
them, which is the point — they are written as they must pass.
"""

from __future__ import annotations

import json
from typing import Iterator

import openai
import pytest
from agents import Agent, ModelSettings, RunConfig, Runner, function_tool, set_tracing_disabled
from agents.models.openai_provider import OpenAIProvider

from recorders import OpenAIRecorder, Reply
from support import ServerThread, start_server

EMBEDDED = "smollm2-135m-instruct"
UP = "rec-model"


@pytest.fixture(scope="module")
def recorder() -> Iterator[OpenAIRecorder]:
    rec = OpenAIRecorder().start()
    yield rec
    rec.stop()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, recorder: OpenAIRecorder) -> Iterator[ServerThread]:
    set_tracing_disabled(True)  # the SDK would export traces to OpenAI's servers
    server = start_server(tmp_path_factory.mktemp("agents"), providers=[{"name": "rec", "base_url": recorder.url}],
                          models=[{"id": UP, "provider": "rec", "context_length": 4096}],
                          embedded={"max_sequences": 2}, max_tokens_cap=256)
    yield server
    server.stop()
    set_tracing_disabled(False)


def client(hub: ServerThread) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=hub.url + "/v1", api_key="unused", max_retries=0)


def weather_agent(model: str, **settings) -> tuple[Agent, list[str]]:
    asked: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        asked.append(city)
        return f"Sunny, 21 C in {city}"

    agent = Agent(name="Weather", instructions="Answer questions about the weather. Use get_weather.",
                  tools=[get_weather], model=model, model_settings=ModelSettings(**settings))
    return agent, asked


def run_config(hub: ServerThread) -> RunConfig:
    # The SDK's default provider, in its default Responses mode, pointed at hubbub.
    return RunConfig(model_provider=OpenAIProvider(openai_client=client(hub)), tracing_disabled=True)


@pytest.mark.parametrize("streamed", [False, True])
async def test_an_agent_with_a_function_tool_runs_to_a_final_answer(hub, recorder, streamed):
    recorder.replies.extend([Reply(text="", tool_calls=[("get_weather", json.dumps({"city": "Oslo"}))]),
                             Reply(text="It is sunny in Oslo, 21 C.")])
    agent, asked = weather_agent(UP)
    if streamed:
        result = Runner.run_streamed(agent, "What is the weather in Oslo?", run_config=run_config(hub), max_turns=4)
        async for _ in result.stream_events():
            pass
    else:
        result = await Runner.run(agent, "What is the weather in Oslo?", run_config=run_config(hub), max_turns=4)
    assert result.final_output == "It is sunny in Oslo, 21 C." and asked == ["Oslo"]
    sent = recorder.requests[-1]["messages"]
    assert sent[0] == {"role": "system", "content": "Answer questions about the weather. Use get_weather."}
    assert sent[-1]["role"] == "tool" and sent[-1]["content"] == "Sunny, 21 C in Oslo"
    assert sent[-2]["tool_calls"][0]["id"] == sent[-1]["tool_call_id"]
    assert recorder.requests[-1]["tools"][0]["function"]["name"] == "get_weather"


async def test_an_agent_with_a_function_tool_on_the_embedded_model(hub):
    """The first turn must call the tool (``tool_choice="required"``; the SDK resets it to auto
    once the tool has run), the second answers in text."""
    agent, asked = weather_agent(EMBEDDED, tool_choice="required", temperature=0, max_tokens=64)
    result = await Runner.run(agent, "What is the weather in Oslo?", run_config=run_config(hub), max_turns=4)
    assert len(asked) >= 1 and all(isinstance(city, str) for city in asked)
    assert isinstance(result.final_output, str) and result.final_output.strip()
    kinds = [item.type for item in result.new_items]
    assert kinds[:2] == ["tool_call_item", "tool_call_output_item"] and kinds[-1] == "message_output_item"


async def test_a_function_tool_round_trip_on_the_embedded_model(hub):
    tool = {"type": "function", "name": "get_weather", "description": "The weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                           "additionalProperties": False}, "strict": True}
    sdk = client(hub)
    asked = await sdk.responses.create(model=EMBEDDED, input="What is the weather in Oslo?", tools=[tool],
                                       tool_choice="required", max_output_tokens=64, temperature=0)
    calls = [item for item in asked.output if item.type == "function_call"]
    assert calls and calls[0].name == "get_weather" and calls[0].call_id
    assert "city" in json.loads(calls[0].arguments)
    answered = await sdk.responses.create(
        model=EMBEDDED, previous_response_id=asked.id, tools=[tool], max_output_tokens=64, temperature=0,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "Sunny, 21 C"}])
    assert answered.status in ("completed", "incomplete") and answered.output
