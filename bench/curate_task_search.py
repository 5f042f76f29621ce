"""Which short-answer task does the embedded SmolLM2-135M teacher partly solve? Measured.

Asks the teacher (llama.cpp, temperature 0.8, ``--max-tokens`` 24) ``--n`` prompts of each
candidate task and scores every answer with curate's math verifier against the reference the
generator knows. A task with a moderate pass rate is one where verifying the teacher's answers
can change what a student learns. Run:

    .venv/bin/python bench/curate_task_search.py --n 40
"""

from __future__ import annotations

import argparse
import random
import time

import httpx

from stillroom.curate import MathVerifier, wilson_interval
from stillroom.teacher import TeacherConfig, serve_teacher

FEW_SHOT = "Answer with the number only.\nQ: What is 2 + 3?\nA: 5\nQ: What is 4 + 1?\nA: 5"


def tasks(rng: random.Random) -> dict[str, tuple[str | None, callable]]:
    def add1():
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        return f"What is {a} + {b}?", a + b

    def add1_only():
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        return f"What is {a} + {b}? Answer with the number only.", a + b

    def add2():
        a, b = rng.randint(10, 49), rng.randint(10, 49)
        return f"What is {a} + {b}? Answer with the number only.", a + b

    def successor():
        a = rng.randint(10, 98)
        return f"What number comes right after {a}? Answer with the number only.", a + 1

    def larger():
        a, b = rng.sample(range(10, 99), 2)
        return f"Which is larger, {a} or {b}? Answer with the number only.", max(a, b)

    def double():
        a = rng.randint(2, 20)
        return f"What is {a} times 2? Answer with the number only.", 2 * a

    return {
        "add 1-digit, bare": (None, add1),
        "add 1-digit, 'number only'": (None, add1_only),
        "add 1-digit, few-shot system": (FEW_SHOT, add1),
        "add 2-digit, 'number only'": (None, add2),
        "successor of a 2-digit number": (None, successor),
        "larger of two 2-digit numbers": (None, larger),
        "double a number up to 20": (None, double),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--temperature", type=float, default=0.8)
    args = parser.parse_args()
    verifier = MathVerifier()
    with (
        serve_teacher(TeacherConfig(logits_all=False)) as teacher,
        httpx.Client(timeout=120) as http,
    ):
        print(
            f"teacher {teacher.model} at T={args.temperature}, max_tokens={args.max_tokens}, n={args.n}"
        )
        for name, (system, make) in tasks(random.Random(0)).items():
            start, right = time.monotonic(), 0
            for i in range(args.n):
                question, answer = make()
                messages = ([{"role": "system", "content": system}] if system else []) + [
                    {"role": "user", "content": question}
                ]
                reply = http.post(
                    f"{teacher.base_url}/chat/completions",
                    json={"model": teacher.model, "messages": messages, "max_tokens": args.max_tokens,
                          "temperature": args.temperature, "seed": i},
                ).json()["choices"][0]["message"]["content"]  # fmt: skip
                right += verifier.verify(question, reply, answer).passed
            low, high = wilson_interval(right, args.n)
            print(
                f"{name:34s} {right:3d}/{args.n} = {right / args.n:5.1%}  (95% {low:.2f}-{high:.2f}; {time.monotonic() - start:.0f} s)"
            )


if __name__ == "__main__":
    main()
