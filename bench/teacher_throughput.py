"""Embedded-teacher throughput: completion tokens/s of llama.cpp's server on SmolLM2-135M.

Starts the embedded teacher once per setting and sends the same shipped prompts (greedy,
fixed ``max_tokens``) with a given client concurrency. The baseline is llama-cpp-python's
own defaults (``n_threads`` = half the cores, no logprobs), measured in the same process;
the ratio of every other row is against it.

    .venv/bin/python bench/teacher_throughput.py            # ~3 min on 2 cores
    .venv/bin/python bench/teacher_throughput.py --prompts 24 --max-tokens 96
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from stillroom.demo import load_shipped_prompts
from stillroom.teacher import TeacherConfig, TeacherServer


def measure(config: TeacherConfig, prompts: list[str], max_tokens: int, concurrency: int,
            logprobs: int | None) -> dict:  # fmt: skip
    with TeacherServer(config) as teacher, httpx.Client(timeout=600) as client:

        def ask(prompt: str) -> int:
            body = {
                "model": teacher.model,
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": max_tokens,
                "temperature": 0,
            }
            if logprobs is not None:
                body |= {"logprobs": True, "top_logprobs": logprobs}
            response = client.post(f"{teacher.base_url}/chat/completions", json=body)
            response.raise_for_status()
            return response.json()["usage"]["completion_tokens"]

        ask(prompts[0])  # warm-up
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            tokens = sum(pool.map(ask, prompts))
        elapsed = time.perf_counter() - started
    return {"tokens": tokens, "seconds": round(elapsed, 2), "tokens_per_s": tokens / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    prompts = [p["prompt"] for p in load_shipped_prompts(args.prompts)]
    cores = os.cpu_count() or 1
    settings = [
        (
            "llama-cpp-python defaults",
            dict(n_threads=max(cores // 2, 1), logits_all=False),
            1,
            None,
        ),
        ("stillroom: all cores, no logprobs", dict(logits_all=False), 1, None),
        ("stillroom: all cores, logits_all, top 5", dict(), 1, 5),
        ("stillroom: all cores, logits_all, top 5, 2 clients", dict(), 2, 5),
        ("one thread, logits_all, top 5", dict(n_threads=1), 1, 5),
    ]
    print(f"{len(prompts)} prompts x max_tokens {args.max_tokens}, {cores} cores, greedy")
    rows, baseline = [], None
    for name, overrides, concurrency, logprobs in settings:
        config = TeacherConfig(**overrides)
        result = measure(config, prompts, args.max_tokens, concurrency, logprobs)
        baseline = baseline or result["tokens_per_s"]
        result |= {"setting": name, "ratio_vs_baseline": result["tokens_per_s"] / baseline}
        rows.append(result)
        print(f"{name:52s} {result['tokens_per_s']:7.1f} tok/s  "
              f"x{result['ratio_vs_baseline']:.2f}  ({result['tokens']} tokens in "
              f"{result['seconds']}s)", flush=True)  # fmt: skip
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
