"""Routing, health and error classification of channels (issue 4), without processes.

The router is driven through scripted providers here only where a test needs an exact
failure at an exact moment; the real upstream is exercised in test_upstream_channels.py.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import AsyncIterator

import pytest

from hubbub.core.events import Finish, ServedBy, TextDelta, UsageReport
from hubbub.core.types import Message, ProviderRequest, SamplingParams, Usage
from hubbub.errors import ChannelUnavailable, ContextTooLong, InvalidRequest, UpstreamError
from hubbub.providers.channels import ChannelRouter, make_channel
from hubbub.providers.faults import UpstreamUnavailable, context_error, from_status, parse_retry_after
from hubbub.providers.health import ChannelHealth
from hubbub.providers.registry import ModelRegistry
from hubbub.providers.upstreams import register_upstreams
from hubbub.settings import FailoverConfig, Settings
from hubbub.providers.base import Capabilities


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Flaky:
    """Sends ``texts`` then fails with ``error`` (or finishes when None)."""

    capabilities = Capabilities(continues_answers=True)

    def __init__(self, name: str, texts: list[str], error: Exception | None = None) -> None:
        self.name = name
        self.texts = texts
        self.error = error
        self.requests: list[ProviderRequest] = []

    async def count_tokens(self, messages, model=""):  # noqa: ANN001
        return 10

    async def count_text_tokens(self, text, model=""):  # noqa: ANN001
        return len(text.split())

    async def stream(self, request: ProviderRequest) -> AsyncIterator:
        self.requests.append(request)
        for text in self.texts:
            yield TextDelta(text)
        if self.error is not None:
            raise self.error
        yield UsageReport(Usage(7, len(self.texts)))
        yield Finish("stop")

    async def aclose(self) -> None:
        pass


def _router(*providers, policy=None, clock=None, **knobs):  # noqa: ANN001, ANN002
    policy = policy or FailoverConfig()
    channels = [make_channel(p.name, p, "upstream-" + p.name, policy, clock or Clock(), priority=-i, **knobs)
                for i, p in enumerate(providers)]
    return ChannelRouter("m", channels, policy, rng=random.Random(1))


REQUEST = ProviderRequest("m", [Message("user", "hi")], SamplingParams(max_tokens=10))


async def _run(router: ChannelRouter) -> list:
    return [e async for e in router.stream(REQUEST)]


def test_plan_orders_by_priority_and_splits_by_weight():
    policy, clock = FailoverConfig(), Clock()
    a, b, c = (Flaky(n, []) for n in "abc")
    channels = [make_channel("a", a, "x", policy, clock, priority=5, weight=3),
                make_channel("b", b, "x", policy, clock, priority=5, weight=1),
                make_channel("c", c, "x", policy, clock, priority=1)]
    router = ChannelRouter("m", channels, policy, rng=random.Random(7))
    firsts = Counter(router.plan()[0].name for _ in range(4000))
    assert set(firsts) == {"a", "b"}  # the lower priority is never first while the top ones are up
    assert 2.6 < firsts["a"] / firsts["b"] < 3.4  # weight 3:1
    assert all(router.plan()[-1].name == "c" for _ in range(50))


async def test_failure_before_the_first_token_moves_on_and_no_channel_left_is_unavailable():
    a = Flaky("a", [], UpstreamUnavailable("server_error", "a returned 500"))
    b = Flaky("b", ["Hello", " world"])
    events = await _run(_router(a, b))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hello", " world"]
    assert events[-2:] == [UsageReport(Usage(7, 2)), Finish("stop")]
    assert b.requests[0].model == "upstream-b" and b.requests[0].assistant_prefix == ""

    down = _router(Flaky("a", [], UpstreamUnavailable("connect", "x")), Flaky("b", [], UpstreamUnavailable("timeout", "y")))
    with pytest.raises(ChannelUnavailable):
        await _run(down)


async def test_request_errors_are_not_retried_elsewhere():
    a = Flaky("a", [], InvalidRequest("bad"))
    b = Flaky("b", ["never"])
    with pytest.raises(InvalidRequest):
        await _run(_router(a, b))
    assert b.requests == []


async def test_a_broken_stream_continues_on_the_next_channel_with_the_prefix():
    a = Flaky("a", ["The", " cat"], UpstreamUnavailable("stream_broken", "cut"))
    b = Flaky("b", [" sat", "."])
    events = await _run(_router(a, b))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "The cat sat."
    assert b.requests[0].assistant_prefix == "The cat"
    assert b.requests[0].params.max_tokens == 8  # 10 asked, 2 already sent
    # The prompt as the answering upstream counted it (issue 19), the completions of both attempts.
    assert events[-2] == UsageReport(Usage(7, 4))
    # Who answered: A first, then B for the rest (the last one bills).
    assert [e.channel for e in events if isinstance(e, ServedBy)] == ["a", "b"]


async def test_a_broken_stream_with_no_one_to_continue_is_an_error_after_the_text():
    a = Flaky("a", ["The"], UpstreamUnavailable("stream_broken", "cut"))
    b = Flaky("b", ["x"])
    b.capabilities = Capabilities()  # cannot continue an answer
    router = _router(a, b)
    seen = []
    with pytest.raises(UpstreamError) as info:
        async for e in router.stream(REQUEST):
            seen.append(e)
    assert not isinstance(info.value, ChannelUnavailable)
    assert info.value.message == "upstream stream cut; no channel could continue"
    assert seen == [ServedBy("a", "a", "upstream-a"), TextDelta("The")] and b.requests == []


async def test_max_retries_retries_a_5xx_on_the_same_channel_never_a_429_or_a_timeout():
    policy = FailoverConfig(backoff_seconds=0.01)
    a = Flaky("a", [], UpstreamUnavailable("server_error", "500"))
    b = Flaky("b", ["ok"])
    await _run(_router(a, b, policy=policy, max_retries=2))
    assert len(a.requests) == 3
    for error in (UpstreamUnavailable("rate_limited", "429"), UpstreamUnavailable("timeout", "slow"),
                  UpstreamUnavailable("rejected", "401")):
        once = Flaky("a", [], error)
        await _run(_router(once, Flaky("b", ["ok"]), policy=policy, max_retries=2))
        assert len(once.requests) == 1


async def test_a_short_retry_after_is_waited_out_once_then_the_next_channel():
    a = Flaky("a", [], UpstreamUnavailable("rate_limited", "429", retry_after=0.2))
    b = Flaky("b", ["ok"])
    router = _router(a, b, clock=time.monotonic)  # a real clock: the wait must really end
    events = await _run(router)
    assert len(a.requests) == 2 and len(b.requests) == 1  # waited once, then moved on
    assert [e.channel for e in events if isinstance(e, ServedBy)] == ["b"]
    long = Flaky("a", [], UpstreamUnavailable("rate_limited", "429", retry_after=60))
    await _run(_router(long, Flaky("b", ["ok"]), clock=time.monotonic))
    assert len(long.requests) == 1  # longer than max_retry_after_wait: not waited for


async def test_after_the_first_token_the_same_channel_is_never_tried_again():
    a = Flaky("a", ["The"], UpstreamUnavailable("stream_broken", "cut"))
    b = Flaky("b", [" end."])
    events = await _run(_router(a, b, max_retries=3))
    assert len(a.requests) == 1 and b.requests[0].assistant_prefix == "The"
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "The end."


async def test_a_provider_that_raises_unexpectedly_is_not_the_channels_failure():
    a = Flaky("a", [], KeyError("hubbub's own bug"))
    b = Flaky("b", ["ok"])
    router = _router(a, b)
    events = await _run(router)
    assert [e.channel for e in events if isinstance(e, ServedBy)] == ["b"]
    assert router.channels[0].health.failures == 0


def test_health_cools_down_after_the_threshold_doubling_and_believes_retry_after():
    clock = Clock()
    health = ChannelHealth(FailoverConfig(failure_threshold=2, cooldown_seconds=10, max_cooldown_seconds=25), clock)
    health.failed("server_error", "500")
    assert health.state == "degraded" and health.available()
    health.failed("server_error", "500")
    assert health.state == "cooldown" and not health.available()
    clock.now += 10
    assert health.available()
    health.failed("connect", "refused")  # still failing right after the cooldown: twice as long
    clock.now += 19.9
    assert not health.available()
    clock.now += 0.2
    assert health.available()
    health.failed("timeout", "slow")  # 40 s would be next, capped at 25
    clock.now += 25
    assert health.available()
    health.succeeded()
    assert health.state == "healthy"
    health.failed("rate_limited", "429", retry_after=3)  # believed at once, whatever the threshold
    assert health.snapshot()["cooldownRemaining"] == 3
    health.failed("server_error", "503", retry_after=9999)
    assert health.snapshot()["cooldownRemaining"] == 25  # capped
    snap = health.snapshot()
    assert snap["errors"]["server_error"] == 3 and snap["errors"]["rate_limited"] == 1
    assert snap["failures"] == 6 and snap["successes"] == 1


def test_retry_after_parsing():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert parse_retry_after("-3") == 0.0


@pytest.mark.parametrize("status,kind", [(429, "rate_limited"), (500, "server_error"), (503, "server_error"),
                                         (529, "server_error"), (408, "server_error"), (401, "rejected"),
                                         (404, "rejected")])
def test_retryable_statuses(status, kind):
    err = from_status(status, "nope", retry_after=2)
    assert isinstance(err, UpstreamUnavailable) and err.kind == kind and err.retry_after == 2


def test_request_faults_and_context_length_messages():
    openai_style = ("This model's maximum context length is 2048 tokens. However, you requested 2139 tokens "
                    "(2131 in the messages, 8 in the completion).")
    err = from_status(400, openai_style, code="context_length_exceeded")
    assert isinstance(err, ContextTooLong) and (err.max_length, err.request_length) == (2048, 2139)
    anthropic_style = context_error("prompt is too long: 208000 tokens > 200000 maximum", "invalid_request_error")
    assert (anthropic_style.max_length, anthropic_style.request_length) == (200000, 208000)
    assert isinstance(from_status(400, "temperature must be <= 2"), InvalidRequest)
    assert isinstance(from_status(422, "the request exceeds the available context size"), InvalidRequest)
    other = from_status(418, "teapot")
    assert isinstance(other, UpstreamError) and not isinstance(other, UpstreamUnavailable)


def test_configuration_mistakes_fail_at_startup():
    def build(**kw):  # noqa: ANN003
        return register_upstreams(Settings(**kw), ModelRegistry("x"), None)

    with pytest.raises(ValueError, match="no \\[\\[models\\]\\] entry"):
        build(providers=[{"name": "p", "base_url": "http://127.0.0.1:9/v1"}],
              channels=[{"name": "c", "model": "ghost", "provider": "p"}])
    with pytest.raises(ValueError, match="no \\[\\[providers\\]\\] entry"):
        build(models=[{"id": "m", "provider": "nowhere"}])
    with pytest.raises(ValueError, match="embedded provider, which is disabled"):
        build(models=[{"id": "m"}], channels=[{"name": "c", "model": "m", "provider": "embedded"}])
    with pytest.raises(ValueError, match="unique"):
        build(providers=[{"name": "p", "base_url": "http://a/v1"}, {"name": "p", "base_url": "http://b/v1"}])


async def test_every_example_in_the_upstreams_doc_loads_and_builds():
    import re
    import tomllib
    from pathlib import Path

    from hubbub.core.types import ModelInfo

    class Embedded(Flaky):  # stands in for the embedded provider: only its window is read
        class model:  # noqa: N801
            n_ctx = 8192

    doc = (Path(__file__).parents[2] / "docs" / "upstreams.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", doc, re.S)
    assert len(blocks) >= 5
    for block in blocks:
        config = tomllib.loads(block)
        registry = ModelRegistry("x")
        registry.register(ModelInfo("x", "x", 8192), Flaky("x", []))
        made = register_upstreams(Settings(**config), registry, Embedded("embedded", []))
        for model in config["models"]:
            router = registry.get(model["id"]).provider
            assert isinstance(router, ChannelRouter) and router.channels
            info = registry.get(model["id"]).info
            assert info.context_length == model.get("context_length", 8192)
        assert made  # each example defines at least one upstream provider
        for provider in made:
            await provider.aclose()
