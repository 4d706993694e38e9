"""`make run` serves the embedded model; the official openai client works against it unchanged."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import openai

from support import free_port

ROOT = Path(__file__).resolve().parents[1]


def test_make_run_then_openai_client(tmp_path):
    port = free_port()
    env = {**os.environ, "HUBBUB_PORT": str(port), "HUBBUB_DATA_DIR": str(tmp_path / "data")}
    log = (tmp_path / "server.log").open("w+")
    proc = subprocess.Popen(["make", "-s", "run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, "make run exited early"
            time.sleep(0.2)
        log.seek(0)
        output = log.read()
        assert f"listening on http://127.0.0.1:{port}" in output
        assert "loaded embedded model smollm2-135m-instruct" in output
        assert (tmp_path / "data" / "hubbub.db").exists()

        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none")
        assert "smollm2-135m-instruct" in [m.id for m in client.models.list()]
        reply = client.chat.completions.create(
            model="smollm2-135m-instruct", messages=[{"role": "user", "content": "Hello!"}], max_tokens=8)
        assert reply.choices[0].message.content
        chunks = client.chat.completions.create(
            model="smollm2-135m-instruct", messages=[{"role": "user", "content": "Hello!"}], max_tokens=8,
            stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
