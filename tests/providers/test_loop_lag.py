"""Blocking work never runs on the event loop (issue 15): a ~100 KiB JSON schema is turned into
a grammar in a worker thread, while the loop goes on serving; and a schema seen before is not
converted again. Measured by events, not by the clock: the loop's heartbeat must tick while the
conversion runs. (The 50 ms bound on another stream's token gaps is bench/loop_lag.py's.)"""

from __future__ import annotations

import asyncio
import threading
import time

from big_schema import big_schema
from hubbub.core.events import TextDelta
from hubbub.core.types import Message, ProviderRequest, ResponseFormat, SamplingParams

MODEL = "smollm2-135m-instruct"


def test_a_large_schema_is_converted_off_the_loop_while_it_keeps_serving(server):
    provider = server.container.registry.get(MODEL).provider
    cache = provider.model._grammars
    schema = big_schema()
    calls: list[tuple[float, float, bool]] = []  # (start, end, on the loop's thread)
    original = cache.get

    async def scenario() -> tuple[list[float], str]:
        loop_thread = threading.get_ident()

        def watched(fmt):  # noqa: ANN001, ANN202
            start = time.monotonic()
            try:
                return original(fmt)
            finally:
                calls.append((start, time.monotonic(), threading.get_ident() == loop_thread))

        cache.get = watched
        ticks: list[float] = []

        async def heartbeat() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.001)

        beat = asyncio.get_running_loop().create_task(heartbeat())
        try:
            request = ProviderRequest(MODEL, [Message("user", "Fill in the record.")], SamplingParams(
                temperature=0, max_tokens=3, response_format=ResponseFormat("json_schema", schema)))
            text = "".join([e.text async for e in provider.stream(request) if isinstance(e, TextDelta)])
            again = "".join([e.text async for e in provider.stream(request) if isinstance(e, TextDelta)])
            assert again == text  # the cached grammar constrains the same way
        finally:
            beat.cancel()
            cache.get = original
        return ticks, text

    ticks, text = server.call(scenario(), timeout=120)
    assert text.startswith("{")
    assert len(calls) == 2 and not any(on_loop for _, _, on_loop in calls)
    start, end, _ = calls[0]
    assert any(start < t < end for t in ticks), "the event loop did not run while the grammar was built"
