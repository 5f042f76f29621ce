"""WireSender: the reused request goes out byte for byte as ``client.post`` sends it, and its
failures come back as the SDK's own exceptions, on a real loopback server."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess

import httpx
import openai
import pytest

import stillroom.harvest._sdk as sdk_module
from stillroom.harvest._http import LeanAioHttpClient
from stillroom.harvest._sender import WireSender
from stillroom.harvest.testing import FakeProvider, Faults

BODY = {"messages": [{"role": "user", "content": "héllo ✓"}], "model": "m", "max_tokens": 5}
HTTP_CLIENTS = {
    "lean": LeanAioHttpClient,  # harvest's own default
    "httpx": openai.DefaultAioHttpClient,  # any client a user injects
}


def sdk_client(base_url: str, http_client, **kw) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key="sk-test", base_url=base_url, max_retries=0, http_client=http_client, **kw
    )


async def send_once(base_url: str, lane: str, body=BODY, retries_taken: int = 0, **kw):
    """One request on ``lane`` ("lean", "httpx" or "sdk"); returns (sender, reply)."""
    http = LeanAioHttpClient() if lane == "sdk" else HTTP_CLIENTS[lane]()
    client = sdk_client(base_url, http, **kw)
    sender = WireSender(client, reuse_request=lane != "sdk")
    try:
        return sender, await sender.send(body, "key-1", retries_taken)
    finally:
        await client.close()


def normalised(seen: dict) -> tuple:
    return (
        seen["method"],
        seen["path"],
        sorted((k.lower(), v) for k, v in seen["headers"]),
        seen["body"],
    )


@pytest.mark.parametrize("lane", ["lean", "httpx"])
def test_reused_request_is_byte_identical_to_client_post(lane):
    with FakeProvider(record_requests=True) as fake:
        for retries in (0, 2):
            sender, reply = asyncio.run(send_once(fake.base_url, lane, retries_taken=retries))
            assert sender.lane == lane and reply.status_code == 200
            ours = fake.server.seen[-1]
            asyncio.run(send_once(fake.base_url, "sdk", retries_taken=retries))
            theirs = fake.server.seen[-1]
            assert normalised(ours) == normalised(theirs)
            assert ("x-stainless-retry-count", str(retries)) in normalised(ours)[2]
    assert reply.headers["X-Request-Id"].startswith("req_")  # headers are case-insensitive
    assert b'"content":"h\xc3\xa9llo \xe2\x9c\x93"' in ours["body"]  # UTF-8, compact, as the SDK


def test_lane_follows_the_client():
    url = "http://127.0.0.1:9/v1"
    assert WireSender(sdk_client(url, LeanAioHttpClient())).lane == "lean"
    assert WireSender(sdk_client(url, httpx.AsyncClient())).lane == "httpx"
    assert WireSender(sdk_client(url, LeanAioHttpClient()), reuse_request=False).lane == "sdk"

    async def rotating_key() -> str:
        return "sk-rotated"

    per_request_auth = openai.AsyncOpenAI(api_key=rotating_key, base_url=url)
    assert WireSender(per_request_auth).lane == "sdk"

    class Custom(openai.AsyncOpenAI):
        pass

    assert WireSender(Custom(api_key="k", base_url=url)).lane == "sdk"


def test_an_sdk_without_the_internals_falls_back_to_client_post(monkeypatch):
    class Changed:
        @staticmethod
        def construct(**_kw):
            raise TypeError("construct() changed")

    monkeypatch.setattr(sdk_module, "FinalRequestOptions", Changed)
    with FakeProvider(record_requests=True) as fake:
        sender, reply = asyncio.run(send_once(fake.base_url, "lean"))
    assert sender.lane == "sdk" and reply.status_code == 200 and len(fake.server.seen) == 1


CASES = {
    # name: (FakeProvider settings, prompt, client timeout, expected SDK exception)
    "429": ({"rpm": 1, "burst_seconds": 1}, "again", 600.0, openai.RateLimitError),
    "400": ({}, "[[status:400]]", 600.0, openai.BadRequestError),
    "500": ({"faults": Faults(error_500=1.0)}, "x", 600.0, openai.InternalServerError),
    # the SDK's own aiohttp transport reports a dropped connection as APITimeoutError, a
    # subclass of APIConnectionError; harvest retries both alike
    "dropped": ({"faults": Faults(dropped=1.0)}, "x", 600.0, openai.APIConnectionError),
    "timeout": ({}, "[[slow:2]]", 0.3, openai.APITimeoutError),
}


@pytest.mark.parametrize("lane", ["lean", "httpx", "sdk"])
@pytest.mark.parametrize("case", list(CASES))
def test_failures_are_the_sdks_exceptions(lane, case):
    settings, prompt, timeout, expected = CASES[case]
    body = {**BODY, "messages": [{"role": "user", "content": prompt}]}
    with FakeProvider(**settings) as fake:
        if case == "429":  # the first request empties the one-request bucket
            asyncio.run(send_once(fake.base_url, lane, body))
        with pytest.raises(expected) as caught:
            asyncio.run(send_once(fake.base_url, lane, body, timeout=timeout))
    if case == "429":  # the retry hint survives, for the limiter and tenacity
        assert float(caught.value.response.headers["retry-after-ms"]) > 0
        assert caught.value.status_code == 429


@pytest.fixture
def self_signed(tmp_path):
    """A certificate for 127.0.0.1 and the server's TLS context (openssl's command line)."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    return cert, server


@pytest.mark.parametrize("lane", ["lean", "sdk"])
def test_https_certificates_are_verified_as_the_sdk_verifies_them(lane, self_signed, monkeypatch):
    cert, server_tls = self_signed
    with FakeProvider(ssl_context=server_tls) as fake:
        assert fake.base_url.startswith("https://")
        monkeypatch.delenv("SSL_CERT_DIR", raising=False)
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        with pytest.raises(openai.APIConnectionError):  # an unknown issuer is refused
            asyncio.run(send_once(fake.base_url, lane))
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the CA bundle httpx2 reads
        sender, reply = asyncio.run(send_once(fake.base_url, lane))
    assert sender.lane == lane and reply.status_code == 200


# -- the SDK adapter (harvest/_sdk.py): version window, fallbacks, auth fails closed -------


def test_the_tested_window_is_the_pinned_one_and_the_installed_sdk_is_in_it():
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    low, high = sdk_module.TESTED_WINDOW
    assert f"openai[aiohttp]>={low},<{high}" in pyproject["project"]["dependencies"]
    assert sdk_module.version_in_window()
    assert not sdk_module.version_in_window("3.58.0") and not sdk_module.version_in_window("3.56.9")


def test_doubt_before_the_network_falls_back_to_client_post_with_one_warning(monkeypatch, caplog):
    async def broken(_client, *_path_and_headers):
        raise sdk_module.SdkMismatch("_build_request changed")

    monkeypatch.setattr(sdk_module, "build_template", broken)

    async def twice(base_url):
        client = sdk_client(base_url, LeanAioHttpClient())
        sender = WireSender(client)
        try:
            assert sender.lane == "lean"
            replies = [await sender.send(BODY, f"k{i}") for i in range(2)]
        finally:
            await client.close()
        return sender, replies

    with (
        caplog.at_level("WARNING", logger="stillroom.harvest"),
        FakeProvider(record_requests=True) as fake,
    ):
        sender, replies = asyncio.run(twice(fake.base_url))
        assert len(fake.server.seen) == 2  # each prompt sent once, by client.post
    assert sender.lane == "sdk" and [r.status_code for r in replies] == [200, 200]
    assert [r.getMessage() for r in caplog.records].count(
        "harvest: cannot reuse the SDK's request (SdkMismatch: _build_request changed); "
        "using client.post"
    ) == 1


@pytest.mark.parametrize("lane", ["lean", "httpx"])
def test_a_failure_after_sending_is_the_sdks_exception_and_never_resent(lane, monkeypatch):
    def drifted(self, response):
        raise AttributeError("_make_status_error_from_response is gone")

    monkeypatch.setattr(openai.AsyncOpenAI, "_make_status_error_from_response", drifted)
    with FakeProvider(faults=Faults(error_500=1.0), record_requests=True) as fake:
        with pytest.raises(openai.InternalServerError) as caught:
            asyncio.run(send_once(fake.base_url, lane))
        assert len(fake.server.seen) == 1
    assert caught.value.status_code == 500


def _fresh(url="http://127.0.0.1:9/v1") -> openai.AsyncOpenAI:
    return sdk_client(url, LeanAioHttpClient())


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda c: delattr(c, "_api_key_provider"), "no '_api_key_provider'"),
        (lambda c: delattr(c, "_ambient_authorizations"), "no '_ambient_authorizations'"),
        (lambda c: setattr(c, "_token_source", object()), "does not know: _token_source"),
        (lambda c: setattr(c, "_provider", object()), "authenticates per request (_provider)"),
        (lambda c: setattr(c, "_ambient_authorizations", frozenset({"x"})), "(_ambient_auth"),
    ],
)
def test_auth_detection_fails_closed(change, why):
    client = _fresh()
    assert WireSender(client).lane == "lean"
    change(client)
    problem = sdk_module.reuse_problem(client)
    assert problem is not None and why in problem.reason
    assert WireSender(client).lane == "sdk"


def test_an_sdk_outside_the_window_is_not_reused(monkeypatch, caplog):
    monkeypatch.setattr(openai, "__version__", "3.58.0")
    with caplog.at_level("WARNING", logger="stillroom.harvest"):
        assert WireSender(_fresh()).lane == "sdk"
    assert "outside the tested window" in caplog.text
