"""The embedded teacher: system-prompt injection, config errors, a real server, the CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from stillroom._teacher_app import with_system_prompt
from stillroom.teacher import MODEL_ALIAS, TeacherConfig, TeacherError, TeacherServer
from tests.stillroom.conftest import TEST_SYSTEM, needs_teacher

ROOT = Path(__file__).resolve().parents[2]


def _chat(messages: list[dict]) -> bytes:
    return json.dumps({"model": "m", "messages": messages}).encode()


def test_system_prompt_is_added_when_the_request_has_none():
    body = with_system_prompt(_chat([{"role": "user", "content": "hi"}]), "Be brief.")
    assert json.loads(body)["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]


def test_a_request_with_its_own_system_prompt_is_served_as_sent():
    sent = _chat([{"role": "system", "content": "Mine."}, {"role": "user", "content": "hi"}])
    assert with_system_prompt(sent, "Be brief.") == sent


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"prompt": "hi"}', b""])
def test_bodies_that_are_not_chat_requests_pass_through(body):
    assert with_system_prompt(body, "Be brief.") == body


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(TeacherError, match=r"GGUF file not found: .*nope\.gguf"):
        TeacherConfig(gguf=tmp_path / "nope.gguf")
    with pytest.raises(TeacherError, match="port"):
        TeacherConfig(port=70000)
    with pytest.raises(TeacherError, match="n_threads"):
        TeacherConfig(n_threads=0)


def test_a_broken_model_file_fails_start_up_with_the_server_log(tmp_path):
    pytest.importorskip("llama_cpp.server")
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF but not really")
    server = TeacherServer(TeacherConfig(gguf=bad, startup_timeout_s=60))
    with pytest.raises(TeacherError, match=r"exited with status 1 during start-up") as caught:
        server.start()
    assert not server.running
    assert "llama.cpp reports" not in str(caught.value)  # a bad file is no build problem
    assert "broken.gguf" in str(caught.value)  # the log's last lines name the file


@needs_teacher
@pytest.mark.slow
@pytest.mark.teacher
def test_real_teacher_serves_chat_with_logprobs(teacher):
    assert teacher.base_url.startswith("http://127.0.0.1:") and teacher.base_url.endswith("/v1")
    models = httpx.get(f"{teacher.base_url}/models", timeout=10).json()
    assert MODEL_ALIAS in [m["id"] for m in models["data"]]
    body = {
        "model": teacher.model,
        "messages": [{"role": "user", "content": "Name a colour."}],
        "max_tokens": 6,
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": 3,
    }
    answer = httpx.post(f"{teacher.base_url}/chat/completions", json=body, timeout=120).json()
    assert answer["model"] == MODEL_ALIAS
    tokens = answer["choices"][0]["logprobs"]["content"]
    assert 1 <= len(tokens) <= 6
    assert all(len(t["top_logprobs"]) == 3 and t["logprob"] <= 0 for t in tokens)


@needs_teacher
@pytest.mark.slow
@pytest.mark.teacher
def test_the_default_system_prompt_reaches_the_model(teacher):
    """Prompt token counts show what the model saw: the default, or the request's own."""

    def prompt_tokens(messages: list[dict]) -> int:
        body = {"model": teacher.model, "messages": messages, "max_tokens": 1}
        response = httpx.post(f"{teacher.base_url}/chat/completions", json=body, timeout=120)
        return response.json()["usage"]["prompt_tokens"]

    user = {"role": "user", "content": "Hello."}
    implicit = prompt_tokens([user])
    explicit = prompt_tokens([{"role": "system", "content": TEST_SYSTEM}, user])
    own = prompt_tokens([{"role": "system", "content": "Hi."}, user])
    assert implicit == explicit
    assert own < explicit


@needs_teacher
@pytest.mark.slow
@pytest.mark.teacher
def test_cli_serve_prints_the_url_and_stops_cleanly_on_ctrl_c():
    proc = subprocess.Popen(
        [sys.executable, "-m", "stillroom.cli", "teacher", "serve", "--port", "0", "--ctx", "512"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "serve exited before printing its URL"
            match = re.search(r"(http://127\.0\.0\.1:\d+/v1)", line)
            url = match.group(1) if match else None
        assert url, "no base URL printed within 120s"
        assert httpx.get(f"{url}/models", timeout=10).status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/models", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
