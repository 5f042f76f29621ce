"""The demo's curation story: does verifying the teacher's answers help the student?

One piece that ``stillroom demo`` and ``bench/curate_three_way.py`` both run:

1. the task, chosen with ``bench/curate_task_search.py``: "What is A + B?" with A in 1..25
   and B in 1..9 (225 prompts, shuffled); the embedded teacher answers with a few-shot
   system prompt (:data:`FEW_SHOT`) at temperature 0.8, ``samples`` answers per prompt;
2. curate: set ``verified`` keeps one verified answer per prompt (math verifier against
   A+B); set ``unverified`` keeps the first answer per prompt, unchecked. Answer dedup is
   off (a short answer like "12" is right for many prompts);
3. LoRA students without the system prompt on the same number N of training rows;
4. ``train eval --task math`` on the held-out half (split by prompt): base and students
   greedy, teacher = its stored first sample. Wilson 95% intervals, exact McNemar per pair.

Each stage reuses what an earlier run in the same directory finished (the harvest resumes;
a trained adapter and its ``eval.json`` are kept).
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from stillroom.demo import DemoError

FEW_SHOT = "Answer with the number only.\nQ: What is 2 + 3?\nA: 5\nQ: What is 4 + 1?\nA: 5"
TEACHER_ROW = "teacher (stored first sample, T=0.8, few-shot system)"


@dataclass(frozen=True)
class CurationSettings:
    """Sizes of the curation story. ``prompts`` of the 225 additions (half held out),
    ``samples`` teacher answers per prompt, ``max_tokens`` for teacher and students;
    training by ``epochs`` or, when set, ``max_steps``; ``unverified`` adds the student
    trained on N unchecked answers (the three-way table)."""

    prompts: int = 225
    samples: int = 3
    max_tokens: int = 12
    epochs: float = 3.0
    max_steps: int | None = None
    batch_size: int = 8
    learning_rate: float = 5e-4
    unverified: bool = True

    def __post_init__(self) -> None:
        if not 8 <= self.prompts <= 225:
            raise DemoError(f"CurationSettings.prompts must be in 8..225, got {self.prompts}")
        for name in ("samples", "max_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise DemoError(f"CurationSettings.{name} must be at least 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise DemoError("CurationSettings.max_steps must be at least 1 (or None)")


#: ``stillroom demo``: the three-way table on 104 held-out prompts.
FULL_CURATION = CurationSettings()
#: ``stillroom demo --quick``: base against the verified student only, 25 held-out prompts
#: (67 s on 2 quiet cores: harvest 23 s, 6 training steps 18 s).
QUICK_CURATION = CurationSettings(
    prompts=64, samples=3, max_steps=6, learning_rate=1e-3, unverified=False
)


def addition_prompts(count: int = 225, seed: int = 0) -> tuple[list[dict], dict[str, str]]:
    """The first ``count`` shuffled "What is A + B?" prompts and their references (A+B)."""
    pairs = [(a, b) for a in range(1, 26) for b in range(1, 10)]
    random.Random(seed).shuffle(pairs)
    pairs = pairs[:count]
    rows = [{"id": f"p{i:03d}", "prompt": f"What is {a} + {b}?"} for i, (a, b) in enumerate(pairs)]
    return rows, {f"p{i:03d}": str(a + b) for i, (a, b) in enumerate(pairs)}


def harvest_additions(
    db: Path,
    rows: list[dict],
    s: CurationSettings,
    progress: bool,
    on_teacher: Any = None,
    command: Sequence[str] | None = None,
) -> dict:
    """The embedded teacher answers every prompt ``s.samples`` times (resumes in ``db``).
    ``on_teacher`` is called with the running teacher (so another thread can stop it);
    ``command``: the teacher's server program (``TeacherConfig.command``)."""
    from stillroom.harvest import HarvestConfig, arun_harvest
    from stillroom.teacher import POLICY_ID, TeacherConfig, serve_teacher

    with serve_teacher(TeacherConfig(logits_all=False, command=command)) as teacher:
        if on_teacher is not None:
            on_teacher(teacher)
        run = teacher.run_while_alive(  # a dead teacher raises TeacherExited at once
            arun_harvest(HarvestConfig(
                prompts=rows, db=db, base_url=teacher.base_url, model=teacher.model,
                policy=POLICY_ID, purpose="stillroom: curation on a verifiable task",
                system=FEW_SHOT, max_tokens=s.max_tokens, temperature=0.8,
                samples=s.samples, concurrency=4, request_timeout=300.0,
            ), progress=progress)
        )  # fmt: skip
    if run.failed or run.stopped_reason:
        raise DemoError(
            f"addition harvest did not finish: {run.failed} failed, stopped: "
            f"{run.stopped_reason} ({run.message}); run again to resume"
        )
    return {"answers": run.completed, "elapsed_s": round(run.elapsed_s, 1)}


class BackgroundHarvest:
    """The curation's harvest on its own teacher in a thread, started before the demo's main
    harvest: each llama.cpp teacher decodes on one thread, so on 2 cores the two harvests
    run side by side and the curation step no longer waits for its own (``--quick``: ~20 s
    of a quiet machine's wall time). :meth:`result` waits for it; :meth:`cancel` stops it.
    ``command``: the teacher's server program (``TeacherConfig.command``)."""

    def __init__(
        self, workdir: Path, s: CurationSettings, command: Sequence[str] | None = None
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        rows, _ = addition_prompts(s.prompts)
        self._teacher: Any = None
        self._cancelled = False
        self._outcome: dict | BaseException | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._run, args=(workdir / "harvest.duckdb", rows, s, command), daemon=True
        )
        self._thread.start()

    def _run(self, db: Path, rows: list[dict], s: CurationSettings, command: Any) -> None:
        try:
            self._outcome = harvest_additions(db, rows, s, False, self._started, command)
        except BaseException as exc:  # handed to the caller by result()
            self._outcome = exc

    def _started(self, teacher: Any) -> None:
        with self._lock:
            self._teacher = teacher
            if self._cancelled:
                teacher.stop()

    def result(self) -> dict:
        """The harvest's figures, once it has finished; its error, raised here."""
        self._thread.join()
        if isinstance(self._outcome, BaseException):
            raise self._outcome
        assert self._outcome is not None
        return self._outcome

    def cancel(self) -> None:
        """Stop its teacher (the harvest ends with ``TeacherExited``) and wait for it."""
        with self._lock:
            self._cancelled = True
            if self._teacher is not None:
                self._teacher.stop()
        self._thread.join()


def curate_sets(db: Path, refs: dict[str, str], unverified: bool) -> dict[str, dict]:
    """Curated sets ``verified`` (and ``unverified``): one answer per prompt each."""
    from stillroom.curate import CurateConfig, SamplingConfig, curate_store

    one = SamplingConfig(keep="one")
    configs = {"verified": CurateConfig(answer_dedup=None, sampling=one)}
    if unverified:
        configs["unverified"] = CurateConfig(verifier=None, answer_dedup=None, sampling=one)
    return {
        name: curate_store(db, name, references=refs, config=config).summary
        for name, config in configs.items()
    }


def train_on(
    db: Path,
    out: Path,
    curated: str,
    max_rows: int | None,
    s: CurationSettings,
    merge: bool = False,
):
    """A LoRA student on the curated set (kept when ``out`` already holds a trained one);
    ``merge`` also writes it merged into the base, ``out/merged`` (a teacher to serve)."""
    from stillroom.train import TrainConfig, train_sft

    if not (out / "metrics.json").exists():
        train_sft(
            TrainConfig(
                db=db, out=out, curated=curated, max_rows=max_rows, drop_system=True,
                reasoning="drop", finish_reasons=("stop", "length"), eval_fraction=0.5,
                seed=0, num_train_epochs=s.epochs, max_steps=s.max_steps or -1,
                per_device_train_batch_size=s.batch_size, learning_rate=s.learning_rate,
                lr_scheduler_type="constant_with_warmup", warmup=0.1, max_length=128,
                logging_steps=5, progress=False, name=f"add-{curated}", merge=merge,
            )
        )  # fmt: skip
    m = json.loads((out / "metrics.json").read_text())
    return {"rows": m["data"]["train_rows"], "steps": m["global_step"], "loss": m.get("train_loss")}


def task_eval(db: Path, adapter: Path, refs: Path, max_tokens: int) -> dict[str, Any]:
    """``train eval --task math`` on the held-out prompts (kept in ``adapter/eval.json``)."""
    from stillroom.train import EvalConfig, evaluate_student

    if (adapter / "eval.json").exists():
        return json.loads((adapter / "eval.json").read_text())["task"]
    return evaluate_student(
        EvalConfig(db=db, adapter=adapter, out=adapter / "eval.json", task="math",
                   references=refs, max_new_tokens=max_tokens, batch_size=16)
    )["task"]  # fmt: skip


def score_rows(verdicts: dict[str, list[dict]]) -> dict[str, Any]:
    """Accuracy with a Wilson 95% interval per model, and exact McNemar per pair."""
    from stillroom.curate import mcnemar_exact, wilson_interval

    rows = {}
    for name, vs in verdicts.items():
        k, n = sum(v["passed"] for v in vs), len(vs)
        rows[name] = {"passed": k, "n": n, "accuracy": k / n if n else None,
                      "wilson95": list(wilson_interval(k, n))}  # fmt: skip
    names = [x for x in verdicts if x != TEACHER_ROW]
    paired = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            va, vb = verdicts[a], verdicts[b]
            only_a = sum(x["passed"] and not y["passed"] for x, y in zip(va, vb, strict=True))
            only_b = sum(y["passed"] and not x["passed"] for x, y in zip(va, vb, strict=True))
            paired.append({"a": a, "b": b, "only_a": only_a, "only_b": only_b,
                           "p_value": mcnemar_exact(only_a, only_b)})  # fmt: skip
    return {"rows": rows, "paired": paired}


def run_curation(
    workdir: Path, s: CurationSettings, progress: bool = False, harvested: dict | None = None
) -> dict[str, Any]:
    """The whole curation story in ``workdir``; returns the figures (also ``curation.json``).
    ``harvested``: the figures of a harvest already done in ``workdir`` (the demo's
    :class:`BackgroundHarvest`); None harvests here."""
    workdir.mkdir(parents=True, exist_ok=True)
    db, refs_path = workdir / "harvest.duckdb", workdir / "references.jsonl"
    rows, refs = addition_prompts(s.prompts)
    refs_path.write_text(
        "".join(json.dumps({"id": k, "answer": v}) + "\n" for k, v in refs.items())
    )
    if harvested is None:
        harvested = harvest_additions(db, rows, s, progress)
    curated = curate_sets(db, refs, s.unverified)
    trained = {"verified": train_on(db, workdir / "verified", "verified", None, s)}
    n = trained["verified"]["rows"]
    ev = task_eval(db, workdir / "verified", refs_path, s.max_tokens)
    verdicts = {"base (greedy, no system prompt)": ev["verdicts"]["base"]}
    if s.unverified:
        trained["unverified"] = train_on(db, workdir / "unverified", "unverified", n, s)
        eu = task_eval(db, workdir / "unverified", refs_path, s.max_tokens)
        verdicts[f"student, {n} unverified answers"] = eu["verdicts"]["student"]
    verdicts[f"student, {n} verified answers"] = ev["verdicts"]["student"]
    verdicts[TEACHER_ROW] = ev["verdicts"]["teacher"]
    figures = {
        "settings": asdict(s),
        "task": "What is A + B? (A 1..25, B 1..9), math verifier",
        "verifier": ev["verifier"],
        "held_out_prompts": len(ev["verdicts"]["base"]),
        "harvest": harvested,
        "curated": curated,
        "trained": trained,
        **score_rows(verdicts),
    }
    (workdir / "curation.json").write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def render_curation(figures: dict[str, Any]) -> list[Any]:
    """Rich renderables: the accuracy table and the paired tests."""
    from rich.table import Table

    n = figures["held_out_prompts"]
    table = Table(title=f"curation: accuracy on {n} held-out additions ({figures['verifier']})")
    for col in ("model", "right", "accuracy", "95% Wilson"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, r in figures["rows"].items():
        low, high = r["wilson95"]
        table.add_row(name, f"{r['passed']}/{r['n']}", f"{r['accuracy']:.1%}",
                      f"[{low:.3f}, {high:.3f}]")  # fmt: skip
    pairs = Table(title="paired (exact McNemar)")
    for col in ("first", "second", "only first", "only second", "p"):
        pairs.add_column(col)
    for p in figures["paired"]:
        pairs.add_row(p["a"], p["b"], str(p["only_a"]), str(p["only_b"]), f"{p['p_value']:.3g}")
    return [table, pairs]
