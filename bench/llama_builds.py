"""tokens/s of the installed (portable) llama.cpp build against another build, and crashes.

Each build runs in its own interpreter (``--other PYTHON``: a throwaway venv holding only
that llama-cpp-python wheel and its dependencies), as a child process, so a build that dies
(a native build's SIGSEGV on an AVX-512/AMX CPU) is a figure, not the end of the bench.
Every child loads SmolLM2-135M-Instruct Q4_1 on 1 thread and answers the same 3 chat
prompts greedily, 32 tokens each, with ``n_batch`` 512 (what the teacher uses) and 1 (one
token per decode, the setting a native build survives). The baseline is this
interpreter's build with ``n_batch`` 512; the ratio of every row is against it.

    .venv/bin/python bench/llama_builds.py --other /tmp/venv-native/bin/python --repeats 2
    .venv/bin/python bench/llama_builds.py --repeats 1     # the installed build alone (quick)

The other venv, built natively (about 10 minutes on 2 busy cores):

    CMAKE_ARGS="-DGGML_NATIVE=ON" .venv/bin/pip wheel --no-cache-dir --no-deps \
        -w /tmp/llama-native llama-cpp-python==0.3.36
    python3 -m venv /tmp/venv-native && /tmp/venv-native/bin/pip install /tmp/llama-native/*.whl
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys

from stillroom._core.embedded_model import find_smollm2_gguf

CHILD = r"""
import json, sys, time
import llama_cpp
gguf, n_batch = sys.argv[1], int(sys.argv[2])
llm = llama_cpp.Llama(gguf, n_ctx=512, n_batch=n_batch, n_threads=1, n_threads_batch=1,
                      verbose=False, seed=0)
info = llama_cpp.llama_print_system_info().decode().strip()
print("llama.cpp:", info, file=sys.stderr, flush=True)
prompts = ["Name three colours.", "What is the capital of France?", "Write a haiku about rain."]
started, done = time.perf_counter(), 0
for p in prompts:
    out = llm.create_chat_completion(messages=[{"role": "user", "content": p}],
                                     max_tokens=32, temperature=0)
    done += out["usage"]["completion_tokens"]
    llm.reset()
elapsed = time.perf_counter() - started
print(json.dumps({"tokens": done, "elapsed_s": elapsed, "info": info}))
"""


def run(python: str, gguf: str, n_batch: int) -> dict:
    proc = subprocess.run([python, "-c", CHILD, gguf, str(n_batch)], capture_output=True,
                          text=True, timeout=900)  # fmt: skip
    if proc.returncode != 0:
        code = proc.returncode
        why = signal.Signals(-code).name if code < 0 else f"status {code}"
        info = next((ln for ln in proc.stderr.splitlines() if ln.startswith("llama.cpp:")), "")
        return {"crashed": why, "info": info.removeprefix("llama.cpp: ")}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**result, "tok_per_s": result["tokens"] / result["elapsed_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--other", help="python of a venv with another build (without: the installed one only)"
    )
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    gguf = str(find_smollm2_gguf())
    builds = {"installed": sys.executable}
    if args.other:
        builds["other"] = args.other
    rows: dict[str, list[dict]] = {}
    for _ in range(args.repeats):  # interleaved, so both builds see the same load
        for name, python in builds.items():
            for n_batch in (512, 1):
                rows.setdefault(f"{name} n_batch={n_batch}", []).append(run(python, gguf, n_batch))
    base = max(r.get("tok_per_s", 0) for r in rows["installed n_batch=512"])
    for name, results in rows.items():
        first = results[0]
        print(f"{name}: {first['info'][:120]}")
        for r in results:
            if "crashed" in r:
                print(f"  crashed: {r['crashed']}")
            else:
                ratio = r["tok_per_s"] / base if base else float("nan")
                print(f"  {r['tok_per_s']:.1f} tok/s ({r['tokens']} tokens in "
                      f"{r['elapsed_s']:.1f}s), ratio {ratio:.2f} to installed n_batch=512")  # fmt: skip


if __name__ == "__main__":
    main()
