"""/metrics exposes Prometheus text with the serving metrics the operators need."""

from __future__ import annotations

import asyncio

MODEL = "smollm2-135m-instruct"


async def test_metrics_after_a_generation(client):
    r = await client.post("/v1/chat/completions", json={"model": MODEL, "max_tokens": 4,
                                                        "messages": [{"role": "user", "content": "Hi"}]})
    assert r.status_code == 200
    await asyncio.sleep(0.2)  # the generation is observed as it closes
    text = (await client.get("/metrics")).text
    for name in ("hubbub_http_requests_total", "hubbub_time_to_first_token_seconds_bucket",
                 "hubbub_tokens_per_second_bucket", "hubbub_generated_tokens_total", "hubbub_active_streams",
                 "hubbub_embedded_queue_depth", "hubbub_rate_limit_refusals_total"):
        assert name in text, name
    assert 'route="/v1/chat/completions"' in text
    line = next(l for l in text.splitlines() if l.startswith(f'hubbub_generated_tokens_total{{model="{MODEL}"}}'))
    assert float(line.split()[-1]) >= 4
