"""Settings precedence: flags > env HUBBUB_* > hubbub.toml > defaults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hubbub.settings import Settings


def test_defaults(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    s = Settings()
    assert (s.host, s.port, s.default_model) == ("127.0.0.1", 8000, "smollm2-135m-instruct")
    assert s.resolved_database_url.startswith("sqlite+aiosqlite:///")


def test_precedence_flags_env_toml(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hubbub.toml").write_text('port = 7000\nhost = "127.0.0.2"\ndata_dir = "fromtoml"\n'
                                          '[embedded]\nn_ctx = 2048\n')
    s = Settings()
    assert (s.port, s.host, s.data_dir, s.embedded.n_ctx) == (7000, "127.0.0.2", Path("fromtoml"), 2048)
    monkeypatch.setenv("HUBBUB_PORT", "7100")
    monkeypatch.setenv("HUBBUB_EMBEDDED__N_CTX", "4096")
    s = Settings()
    assert (s.port, s.host, s.embedded.n_ctx) == (7100, "127.0.0.2", 4096)
    s = Settings(port=7200)
    assert s.port == 7200


def test_explicit_config_file(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "other.toml"
    cfg.write_text('database_url = "postgresql://u@h/db"\n')
    monkeypatch.setenv("HUBBUB_CONFIG", str(cfg))
    assert Settings().database_url == "postgresql://u@h/db"
    monkeypatch.setenv("HUBBUB_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(FileNotFoundError):
        Settings()


def test_serve_refuses_public_address_without_keys(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "hubbub", "serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0" in result.stderr
