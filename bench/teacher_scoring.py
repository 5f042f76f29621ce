"""Teacher scoring speed: tokens/s of every-token logprobs against prompt evaluation.

Two embedded teachers (SmolLM2-135M Q4_1, llama.cpp, ``logits_all``) run side by side: one
with llama-cpp-python's own ``/v1/completions`` + ``echo`` path (``scoring_route=False``), one
with stillroom's scoring route. For each text, in turn on both servers:

- prompt evaluation (the baseline): ``/v1/completions`` with ``max_tokens: 1``, no logprobs,
  prompt tokens / seconds;
- scoring: ``echo: true, logprobs: 1, max_tokens: 1``, prompt tokens / seconds.

The two variants of a text start with different tokens, so no request reuses the previous
one's evaluated prefix. It also prints how far llama-cpp-python's echoed logprobs are from
the route's on the same text (they are shifted by one token when the model adds no BOS).

    nice -n 10 .venv/bin/python bench/teacher_scoring.py            # ~3 min on 2 busy cores
    nice -n 10 .venv/bin/python bench/teacher_scoring.py --texts 12
"""

from __future__ import annotations

import argparse
import os
import time

import httpx
import numpy as np

from stillroom.demo import load_shipped_prompts
from stillroom.teacher import TeacherConfig, TeacherServer


def texts(n: int, per_text: int) -> list[str]:
    prompts = [p["prompt"] for p in load_shipped_prompts(n * per_text)]
    return [" ".join(prompts[i * per_text : (i + 1) * per_text]) for i in range(n)]


def timed(client: httpx.Client, server: TeacherServer, body: dict) -> tuple[float, dict]:
    started = time.perf_counter()
    response = client.post(f"{server.base_url}/completions", json={"model": server.model, **body})
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed, response.json()


def rss_mb(pid: int | None) -> float:
    with open(f"/proc/{pid}/status") as fh:
        line = next(x for x in fh if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=6)
    parser.add_argument("--prompts-per-text", type=int, default=3)
    args = parser.parse_args()
    plain_cfg = TeacherConfig(n_ctx=1024, scoring_route=False)
    route_cfg = TeacherConfig(n_ctx=1024)
    totals = {k: [0, 0.0] for k in ("plain_eval", "echo", "route_eval", "route")}
    gaps = []
    with (
        TeacherServer(plain_cfg) as plain,
        TeacherServer(route_cfg) as route,
        httpx.Client(timeout=900) as client,
    ):
        for i, body_text in enumerate(texts(args.texts, args.prompts_per_text)):
            evaluate = {"prompt": f"A. {body_text}", "max_tokens": 1, "temperature": 0}
            score = {"prompt": f"B. {body_text}", "echo": True, "logprobs": 1, "max_tokens": 1,
                     "temperature": 0}  # fmt: skip
            runs = [
                ("plain_eval", plain, evaluate),
                ("echo", plain, score),
                ("route_eval", route, evaluate),
                ("route", route, score),
            ]
            answers = {}
            for key, server, body in runs:
                seconds, answer = timed(client, server, body)
                totals[key][0] += answer["usage"]["prompt_tokens"]
                totals[key][1] += seconds
                answers[key] = answer
            echo_lp = answers["echo"]["choices"][0]["logprobs"]["token_logprobs"]
            route_lp = answers["route"]["choices"][0]["logprobs"]["token_logprobs"]
            n = answers["route"]["usage"]["prompt_tokens"]
            gaps.append(np.abs(np.array(echo_lp[1:n]) - np.array(route_lp[1:n])))
            print(f"text {i}: {n} tokens", flush=True)
        memory = {"plain": rss_mb(plain.pid), "route": rss_mb(route.pid)}
    rate = {k: tokens / seconds for k, (tokens, seconds) in totals.items()}
    gap = np.concatenate(gaps)
    print(f"\n{args.texts} texts, {totals['route'][0]} tokens scored per method, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"prompt evaluation (baseline), llama-cpp-python server: {rate['plain_eval']:7.1f} tok/s")
    print(f"scoring, llama-cpp-python echo + logprobs:             {rate['echo']:7.1f} tok/s  "
          f"x{rate['echo'] / rate['plain_eval']:.2f} of prompt evaluation")  # fmt: skip
    print(f"prompt evaluation, stillroom teacher:                  {rate['route_eval']:7.1f} tok/s")
    print(f"scoring, stillroom scoring route:                      {rate['route']:7.1f} tok/s  "
          f"x{rate['route'] / rate['route_eval']:.2f} of prompt evaluation, "
          f"x{rate['route'] / rate['echo']:.1f} llama-cpp-python's echo")  # fmt: skip
    print(f"echo vs route logprobs: median |diff| {np.median(gap):.2f} nats, "
          f"{np.mean(gap < 1e-3):.0%} of tokens within 1e-3")  # fmt: skip
    print(f"server RSS: {memory['plain']:.0f} MB (llama-cpp-python), "
          f"{memory['route']:.0f} MB (with the route)")  # fmt: skip


if __name__ == "__main__":
    main()
