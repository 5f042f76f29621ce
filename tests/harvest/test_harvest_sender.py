"""ChatSender: the reused request goes out byte for byte as ``client.post`` sends it, and its
failures come back as the SDK's own exceptions, on a real loopback server."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess

import httpx
import openai
import pytest

import harvest._sender as sender_module
from harvest._http import LeanAioHttpClient
from harvest._sender import ChatSender
from harvest.testing import FakeProvider, Faults

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
    sender = ChatSender(client, reuse_request=lane != "sdk")
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
    assert ChatSender(sdk_client(url, LeanAioHttpClient())).lane == "lean"
    assert ChatSender(sdk_client(url, httpx.AsyncClient())).lane == "httpx"
    assert ChatSender(sdk_client(url, LeanAioHttpClient()), reuse_request=False).lane == "sdk"

    async def rotating_key() -> str:
        return "sk-rotated"

    per_request_auth = openai.AsyncOpenAI(api_key=rotating_key, base_url=url)
    assert ChatSender(per_request_auth).lane == "sdk"

    class Custom(openai.AsyncOpenAI):
        pass

    assert ChatSender(Custom(api_key="k", base_url=url)).lane == "sdk"


def test_an_sdk_without_the_internals_falls_back_to_client_post(monkeypatch):
    class Changed:
        @staticmethod
        def construct(**_kw):
            raise TypeError("construct() changed")

    monkeypatch.setattr(sender_module, "FinalRequestOptions", Changed)
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
