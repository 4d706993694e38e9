"""A number no upstream takes is the client's error, refused at the edge (issue 22, High 3): a
``seed`` of 2^64 once failed in hubbub's own encoding of the upstream request, counted as a
failure of the channel, and three of them put the channel in cooldown for everyone."""

from __future__ import annotations

STORY = [{"role": "user", "content": "Tell me a short story about a cat."}]


async def _channels(hub) -> dict[str, dict]:  # noqa: ANN001
    return {c["name"]: c for c in (await hub.get("/api/channels")).json()["channels"]}


async def test_seeds_past_int64_are_400_and_never_count_against_the_channel(hub, proxies):
    proxies["a"].set("pass")
    before = await _channels(hub)
    for seed in (2**64, 2**64 + 1, -(2**64), 2**63, 2**70):
        r = await hub.post("/v1/chat/completions", json={"model": "up-pair", "messages": STORY, "max_tokens": 4,
                                                          "seed": seed})
        assert r.status_code == 400 and r.json()["error"]["param"] == "seed", r.text
    r = await hub.post("/v1/chat/completions", json={"model": "up-pair", "messages": STORY, "max_tokens": 4,
                                                      "seed": 2**63 - 1})
    assert r.status_code == 200, r.text
    after = await _channels(hub)
    for name in ("pair-a", "pair-b"):
        assert after[name]["failures"] == before[name]["failures"], (name, before[name], after[name])
    assert after["pair-a"]["state"] == "healthy" and after["pair-a"]["successes"] == before["pair-a"]["successes"] + 1
