"""The model's proposal: constrained decoding on the real embedded model, and output that always parses."""

from __future__ import annotations

import json

import pytest

from hubbub.core.types import Message
from hubbub.dsl.normalize import normalize
from hubbub.dsl.proposal import complete_json, prompt, propose, summary
from hubbub.dsl.schema import Dsl, proposal_schema
from hubbub.dsl.validate import problems
from hubbub.providers.json_grammar import schema_to_gbnf
from hubbub.settings import EMBEDDED_MODEL_ID
from hubbub.providers.base import Capabilities


@pytest.mark.parametrize(("text", "expected"), [
    ('{"entities": [{"name": "Post", "fields": []}], "relationships": []}',
     {"entities": [{"name": "Post", "fields": []}], "relationships": []}),
    ('{"entities": [{"name": "Post", "fields": [{"name": "tit', {"entities": [{"name": "Post", "fields": [{"name": "tit"}]}]}),
    ('{"entities": [{"name": "Post", "fields": [{"name": "title", "type":', {"entities": [{"name": "Post", "fields": [{"name": "title"}]}]}),
    ('{"entities": [{"name": "Post"}, ', {"entities": [{"name": "Post"}]}),
    ('{"a": "x\\"y', {"a": 'x"y'}),
    ("", None),
    ("not json at all", None),
])
def test_cut_off_json_is_completed(text, expected):
    assert complete_json(text) == expected


def test_both_schemas_compile_to_a_grammar():
    for rich in (False, True):
        grammar = schema_to_gbnf(proposal_schema(rich=rich))
        assert "root ::=" in grammar


def test_the_prompt_keeps_the_model_and_the_users_words():
    previous = normalize(Dsl.from_dict({"entities": {"Post": {"fields": {"title": "string"}}}, "relationships": []}))
    messages = [Message("system", "Be brief."), Message("user", "A blog with posts."), Message("assistant", "OK!"),
                Message("user", "Add tags.")]
    weak = prompt(previous, messages, strong=False)[1].content
    strong = prompt(previous, messages, strong=True)[1].content
    assert "Current model: Post(title: string)" in weak and "user: Add tags." in weak
    assert "assistant: OK!" not in weak and "assistant: OK!" in strong and "Be brief" not in strong
    assert summary(None) == "(empty)"


async def test_the_embedded_model_answers_in_the_schema(server):
    """Greedy, short and grammar-constrained: whatever the 135M model writes parses into a DSL."""
    entry = server.container.registry.get(EMBEDDED_MODEL_ID)
    messages = [Message("user", "I need a blog with posts, authors, and comments")]
    answer = server.call(propose(entry, None, messages, strong=False, max_tokens=48, timeout=120), timeout=180)
    assert answer.text.lstrip().startswith("{")
    assert 0 < answer.usage.completion_tokens <= 48
    data = complete_json(answer.text)
    assert isinstance(data, dict) and set(data) <= {"entities", "relationships"}
    for entity in data.get("entities", []):
        assert set(entity) <= {"name", "fields"}  # additionalProperties: false, enforced while decoding
        assert entity.get("name", "A")[:1].isupper()
    assert answer.dsl is not None
    assert problems(normalize(answer.dsl)) == []
    json.dumps(normalize(answer.dsl).to_dict())  # and it serialises


async def test_a_provider_failure_gives_no_proposal(server):
    from hubbub.core.types import ModelInfo
    from hubbub.errors import UpstreamError
    from hubbub.providers.registry import CatalogEntry

    class Broken:
        name, capabilities = "broken", Capabilities(json_schema=True)

        async def stream(self, request):  # noqa: ANN001
            raise UpstreamError("down")
            yield  # pragma: no cover

    entry = CatalogEntry(ModelInfo("broken", "broken", 1000), Broken(), "broken")  # type: ignore[arg-type]
    answer = await propose(entry, None, [Message("user", "a blog")], strong=True, max_tokens=10, timeout=5)
    assert answer.dsl is None
