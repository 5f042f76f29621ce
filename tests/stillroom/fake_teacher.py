"""A stand-in for the teacher's server process that dies from SIGSEGV (tests only).

    python fake_teacher.py MODE SETTINGS_JSON

``MODE``: ``start`` dies before it listens (a self-test crash); ``chat`` answers
``GET /v1/models`` and dies at the first chat request (what a native llama.cpp build does
on an AVX-512/AMX CPU); ``ready`` dies half a second after it first reported ready.
It first reports ``BUILD`` as its llama.cpp build; before it dies it prints the time (``crash at <unix time>``), then ``LAST_WORDS``, to its log.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LAST_WORDS = "fake teacher: decoding a 9-token prompt"
#: What it reports as its llama.cpp build, as the real server does first: a native AMX one.
BUILD = "CPU : SSE3 = 1 | AVX2 = 1 | FMA = 1 | AVX512 = 1 | AMX_INT8 = 1 |"


def seconds_since_crash(log: str) -> float:
    """Seconds since the crash a log or message that holds this fake's log reports."""
    return time.time() - float(re.search(r"crash at (\d+\.\d+)", log).group(1))


def die() -> None:
    print(f"fake teacher: crash at {time.time():.3f}", flush=True)
    print(LAST_WORDS, flush=True)
    os.kill(os.getpid(), signal.SIGSEGV)
    time.sleep(10)  # never reached: SIGSEGV's default action ends the process


class Handler(BaseHTTPRequestHandler):
    mode = "chat"

    def do_GET(self) -> None:
        body = json.dumps({"object": "list", "data": [{"id": "fake"}]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.mode == "ready":
            threading.Timer(0.5, die).start()

    def do_POST(self) -> None:
        die()

    def log_message(self, *args: object) -> None:
        pass


def main(mode: str, settings_json: str) -> None:
    settings = json.loads(settings_json)
    print(f"llama.cpp: {BUILD}", flush=True)
    if mode == "start":
        die()
    Handler.mode = mode
    ThreadingHTTPServer((settings["host"], settings["port"]), Handler).serve_forever()


if __name__ == "__main__":
    main(*sys.argv[1:])
