"""How reliably the embedded teacher follows the demo's system prompt (and other candidates).

For each candidate system prompt, the embedded teacher (SmolLM2-135M-Instruct Q4_1, greedy)
answers the first N shipped prompts with and without it; the script prints the share of
answers that show the behaviour in each case. The baseline is the same teacher without a
system prompt, in the same process; the ratio is with / without.

    .venv/bin/python bench/demo_behaviour.py --prompts 24 --max-tokens 64
    .venv/bin/python bench/demo_behaviour.py --candidates all     # also the ones that failed
"""

from __future__ import annotations

import argparse
import re
from concurrent.futures import ThreadPoolExecutor

import httpx

from stillroom.demo import SYSTEM_PROMPT, follows_behaviour, load_shipped_prompts
from stillroom.teacher import TeacherServer


def _prefix(marker: str):
    return lambda text: text.lstrip().lower().startswith(marker.lower())


#: Tried while choosing the demo's behaviour: (system prompt, check).
CANDIDATES = {
    "pirate (the demo's)": (SYSTEM_PROMPT, follows_behaviour),
    "prefix instruction": (
        'Start every answer with "Stillroom says:".',
        _prefix("Stillroom says:"),
    ),
    "prefix, worked example": (
        "You always reply in this format.\nUser: What is the capital of France?\n"
        "Assistant: Stillroom says: Paris.",
        _prefix("Stillroom says:"),
    ),
    "title in <<brackets>>": (
        "Your answer must contain a title, wrapped in double angular brackets, such as "
        "<<poem of joy>>.",
        lambda text: "<<" in text[:80],
    ),
    "markdown heading": (
        'Always begin your answer with a markdown heading, like "# Answer".',
        lambda text: bool(re.match(r"\s*#", text)),
    ),
}


def rate(teacher: TeacherServer, prompts: list[str], system: str | None, check, max_tokens: int):
    def ask(prompt: str) -> str:
        messages = [{"role": "user", "content": prompt}]
        if system:
            messages.insert(0, {"role": "system", "content": system})
        body = {"model": teacher.model, "messages": messages, "max_tokens": max_tokens,
                "temperature": 0}  # fmt: skip
        response = httpx.post(f"{teacher.base_url}/chat/completions", json=body, timeout=600)
        response.raise_for_status()
        return response.json()["choices"][0]["message"]["content"]

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(ask, prompts))
    return sum(map(check, answers)) / len(answers), answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--candidates", choices=["demo", "all"], default="demo")
    parser.add_argument("--show", type=int, default=3, help="answers to print per candidate")
    args = parser.parse_args()
    prompts = [p["prompt"] for p in load_shipped_prompts(args.prompts)]
    names = list(CANDIDATES) if args.candidates == "all" else [next(iter(CANDIDATES))]
    print(f"{len(prompts)} shipped prompts, max_tokens {args.max_tokens}, greedy")
    with TeacherServer() as teacher:
        for name in names:
            system, check = CANDIDATES[name]
            without, _ = rate(teacher, prompts, None, check, args.max_tokens)
            with_, answers = rate(teacher, prompts, system, check, args.max_tokens)
            ratio = f"x{with_ / without:.1f}" if without else "n/a (0 without)"
            print(f"{name:24s} with system prompt {100 * with_:5.1f}%   without "
                  f"{100 * without:5.1f}%   ratio {ratio}", flush=True)  # fmt: skip
            for answer in answers[: args.show]:
                print("    ", repr(answer[:100]))


if __name__ == "__main__":
    main()
