"""The seeds' own JavaScript clients, run unmodified (but for the base URL) under Node.

Each ``*.mjs`` here is a seed's example copied verbatim; the only change is the
absolute base URL Node's ``fetch`` needs (``HUBBUB_URL``). They run against a
real hubbub (embedded model, SQLite) started for this module, whose catalog maps
the id seed 000's example asks for, ``advanced-llm-model``, onto the embedded
model — the way a deployment serves the model ids its clients already send.

The examples send no token limit. builder and conversations replies are bounded
by the server's ``max_tokens_cap``; bento's only bound is the model's context,
so the alias is declared with a small ``context_length`` (128 tokens: the
example's prompt is 33, which leaves at most 95 for the answer).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from hubbub.settings import EMBEDDED_MODEL_ID, ModelConfig
from support import ServerThread, env_flag, start_server

HERE = Path(__file__).parent
ALIAS = ModelConfig(id="advanced-llm-model", name="Advanced LLM Model", provider="embedded", context_length=128)
CAP = 12


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        if env_flag("CI"):
            pytest.fail("node is not installed, and CI=true: the seed client examples must run in CI", pytrace=False)
        pytest.skip("node is not installed; install Node 20 to run the seeds' JavaScript examples")
    return path


@pytest.fixture(scope="module")
def seed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    srv = start_server(tmp_path_factory.mktemp("seed-clients"), models=[ALIAS], max_tokens_cap=CAP)
    yield srv
    srv.stop()


def run_client(node: str, server: ServerThread, script: str, timeout: float = 300) -> str:
    """Run ``script`` with Node against ``server``; its stdout, after asserting a clean exit."""
    env = {**os.environ, "HUBBUB_URL": server.url}
    proc = subprocess.run(
        [node, str(HERE / script)], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, f"{script} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.stderr == "", proc.stderr
    return proc.stdout


def test_bento_stream_example_prints_text_then_stream_complete(node, seed_server):
    out = run_client(node, seed_server, "bento_stream.mjs")
    text, sep, rest = out.partition("Stream complete\n")
    assert sep, f"no 'Stream complete' line in {out!r}"
    assert rest == ""  # [DONE] is the last event
    assert text.strip(), "the model's text was not written before 'Stream complete'"
    assert "undefined" not in text  # every data object carried a `content` string


def test_bento_models_example_lists_the_catalog(node, seed_server):
    out = run_client(node, seed_server, "bento_models.mjs")
    lines = out.splitlines()
    assert f"SmolLM2 135M Instruct (embedded) ({EMBEDDED_MODEL_ID})" in lines
    assert "Advanced LLM Model (advanced-llm-model)" in lines
    assert len(lines) == len(seed_server.container.registry.ids())


def test_builder_example_prints_ai_lines_then_the_dsl_and_phase(node, seed_server):
    out = run_client(node, seed_server, "builder_events.mjs")
    lines = out.splitlines()
    ai = [i for i, line in enumerate(lines) if line.startswith("AI: ")]
    assert ai, f"no 'AI:' lines in {out!r}"
    assert "".join(lines[i][4:] for i in ai).strip()
    # DSL is on by default: after the text, the example logs the DSL object and the phase.
    dsl = [i for i, line in enumerate(lines) if line.startswith("DSL Update: ")]
    phases = [line for line in lines if re.fullmatch(r"Phase: (clarifying|proposing|refining|ready)", line)]
    assert dsl and min(dsl) > max(ai), out
    assert len(phases) == 1, out


def test_conversations_stream_client_prints_content_and_usage(node, seed_server):
    out = run_client(node, seed_server, "conversations_stream.mjs")
    first, _, rest = out.partition("\n")
    match = re.fullmatch(r"Conversation: (conv_\S+)", first)
    assert match, f"the stream did not start with its conversation id: {out!r}"
    text, sep, usage = rest.rpartition("\nUsage: ")
    assert sep and text.strip(), f"no content before the usage line: {out!r}"
    numbers = json.loads(usage)
    assert 0 < numbers["completionTokens"] <= CAP
    assert numbers["totalTokens"] == numbers["promptTokens"] + numbers["completionTokens"]
    # The example's body names the user, group and preset: the turn was stored under them.
    conv = seed_server.call(seed_server.container.conversations.get(match.group(1), None, kind="conversation"))
    assert (conv.user_id, conv.group_id, conv.preset) == ("123456789", "987654321", "default")
