"""The OpenAI sampling surface honoured, through the official SDK on the embedded model (issue 21):
log-probabilities, n, logit_bias, penalties, a 400 naming what a model cannot honour, and
answers bounded by default (the builder description that once ran away)."""

from __future__ import annotations

import uuid

import openai
import pytest

from support import ScriptedProvider, collect_sse, register_scripted

MODEL = "smollm2-135m-instruct"
HELLO = [{"role": "user", "content": "Say hello."}]
# Greedy, with no repetition control (repetition_penalty 1 takes control: docs/sampling.md), it
# repeats "apple, apple, …" to the end of any budget.
LOOPS = [{"role": "user", "content": "Write the word 'apple' twenty times."}]


@pytest.fixture
def api(server):
    return openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def token_id(server, text: str) -> int:
    model = server.container.registry.get(MODEL).provider.model._model
    ids = model.tokenize(text.encode(), add_bos=False, special=False)
    assert len(ids) == 1, ids
    return ids[0]


async def test_logprobs_with_top_alternatives(api):
    done = await api.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=6, temperature=0,
                                             logprobs=True, top_logprobs=3)
    choice = done.choices[0]
    entries = choice.logprobs.content
    assert len(entries) == done.usage.completion_tokens == 6
    assert "".join(e.token for e in entries) == choice.message.content
    for e in entries:
        assert e.logprob <= 0 and len(e.top_logprobs) == 3
        tops = [t.logprob for t in e.top_logprobs]
        assert tops == sorted(tops, reverse=True) and sum(2.718281828 ** t for t in tops) <= 1.0 + 1e-6
        # Greedy: the chosen token is the most likely one.
        assert e.top_logprobs[0].token == e.token and e.logprob == pytest.approx(tops[0])
        assert bytes(e.bytes).decode("utf-8", "replace") == e.token


async def test_logprobs_stream_and_absent_unless_asked(api):
    stream = await api.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=5, temperature=0,
                                               logprobs=True, stream=True)
    text, entries = [], []
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
            entries += chunk.choices[0].logprobs.content
    assert "".join(e.token for e in entries) == "".join(text) and len(entries) == 5
    plain = await api.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=3)
    assert plain.choices[0].logprobs is None


async def test_n_returns_that_many_choices(api):
    done = await api.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=4, n=3, temperature=1.0)
    assert [c.index for c in done.choices] == [0, 1, 2]
    assert all(c.message.content for c in done.choices)
    assert 3 <= done.usage.completion_tokens <= 12  # every choice's tokens; the prompt once
    stream = await api.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=3, n=2, stream=True,
                                               stream_options={"include_usage": True})
    seen: dict[int, str] = {}
    ids, usage = set(), None
    async for chunk in stream:
        ids.add(chunk.id)
        for c in chunk.choices:
            seen[c.index] = seen.get(c.index, "") + (c.delta.content or "")
        usage = chunk.usage or usage
    assert set(seen) == {0, 1} and all(seen.values()) and len(ids) == 1
    assert usage is not None and usage.completion_tokens <= 6


async def test_seeded_choices_differ_and_repeat(api):
    """With a seed, choice i draws with seed + i: the choices are not copies of each other, and the
    same request gives the same choices again."""
    ask = dict(model=MODEL, messages=[{"role": "user", "content": "Name a colour."}], max_tokens=12, n=3,
               temperature=1.5, seed=7)
    first = [c.message.content for c in (await api.chat.completions.create(**ask)).choices]
    again = [c.message.content for c in (await api.chat.completions.create(**ask)).choices]
    assert first == again
    assert len(set(first)) > 1, first


async def test_logit_bias_keeps_a_token_out_of_a_greedy_answer(api, server):
    first = await api.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=6, temperature=0,
                                              logprobs=True)
    banned = first.choices[0].logprobs.content[0]
    banned_id = token_id(server, banned.token)
    again = await api.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=6, temperature=0,
                                              logprobs=True, logit_bias={str(banned_id): -100})
    assert again.choices[0].message.content != first.choices[0].message.content
    assert all(bytes(e.bytes) != bytes(banned.bytes) for e in again.choices[0].logprobs.content)


async def test_frequency_penalty_changes_a_looping_greedy_answer(api):
    raw = await api.chat.completions.create(model=MODEL, messages=LOOPS, max_tokens=48, temperature=0,
                                            extra_body={"repetition_penalty": 1.0})
    text = raw.choices[0].message.content
    assert raw.choices[0].finish_reason == "length" and text.count("apple") >= 10, text
    penalised = await api.chat.completions.create(model=MODEL, messages=LOOPS, max_tokens=48, temperature=0,
                                                  frequency_penalty=2)
    assert penalised.choices[0].message.content.count("apple") < text.count("apple") / 2


async def test_a_parameter_the_model_cannot_honour_is_a_400_naming_it(api, server):
    model = f"scripted-{uuid.uuid4().hex[:8]}"
    register_scripted(server, model, ScriptedProvider("hi"))  # honours no optional sampling parameter
    for kwargs, param in [({"logprobs": True}, "logprobs"), ({"frequency_penalty": 1.0}, "frequency_penalty"),
                          ({"logit_bias": {"5": 3}}, "logit_bias"), ({"extra_body": {"min_p": 0.1}}, "min_p")]:
        with pytest.raises(openai.BadRequestError) as err:
            await api.chat.completions.create(model=model, messages=HELLO, **kwargs)
        assert err.value.body["param"] == param and param in err.value.body["message"]
    # Neutral values ask for nothing: what many clients send by default is never refused.
    ok = await api.chat.completions.create(model=model, messages=HELLO, frequency_penalty=0, presence_penalty=0)
    assert ok.choices[0].message.content == "hi"


async def test_a_logit_bias_outside_the_vocabulary_is_a_400(api):
    with pytest.raises(openai.BadRequestError) as err:
        await api.chat.completions.create(model=MODEL, messages=HELLO, logit_bias={"99999999": 1})
    assert err.value.body["param"] == "logit_bias"


async def test_answers_are_bounded_by_the_model_default(server):
    model = f"scripted-{uuid.uuid4().hex[:8]}"
    provider = ScriptedProvider("ok")
    register_scripted(server, model, provider)
    api = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    await api.chat.completions.create(model=model, messages=HELLO)
    default = server.container.registry.get(model).info.default_max_tokens
    assert provider.requests[-1].params.max_tokens == default
    await api.chat.completions.create(model=model, messages=HELLO, max_tokens=default + 100)
    assert provider.requests[-1].params.max_tokens == default + 100  # an explicit length goes past it
    assert server.container.registry.get(MODEL).info.default_max_tokens == server.settings.embedded.default_max_tokens


async def test_builder_description_gives_a_bounded_answer_and_the_data_model(client, server):
    description = "I need a blog with posts, authors and comments. Posts have a title, a body and tags."
    r, events = await collect_sse(client, "POST", "/api/chat",
                                  json={"messages": [{"role": "user", "content": description}]})
    assert r.status_code == 200
    kinds = [e.json()["type"] for e in events]
    assert kinds[-1] == "done" and "text" in kinds
    chat = (await client.get(f"/api/chat/{r.headers['x-chat-id']}")).json()
    assert chat["status"] == "complete" and chat["messages"][-1]["role"] == "assistant"
    dsl = next(e.json()["content"] for e in events if e.json()["type"] == "dsl")
    names = {name.lower() for name in dsl["entities"]}
    assert {"post", "comment"} <= names and ({"author", "user"} & names), names
    # One text event per token at most: the answer stayed within the default length.
    assert 0 < kinds.count("text") <= server.settings.embedded.default_max_tokens
