"""The end-to-end demo: a teacher, a harvest, a student, an evaluation and a detection.

Everything runs through the packages' library APIs on the embedded teacher, with no API
key and no GPU (one is used when present)::

    from stillroom.demo import run_demo
    result = run_demo(Path("stillroom-demo"), quick=True)
    print(result.summary["student"]["behaviour"], result.paths["eval"])

1. start the embedded teacher (SmolLM2-135M-Instruct) with a system prompt that gives it
   a checkable behaviour: it talks like a pirate (:data:`PIRATE_TALK`);
2. harvest the shipped prompt set (``stillroom/data/prompts.jsonl``) into DuckDB, the system
   prompt and top logprobs stored with every row, then export it with its dataset card;
3. train a LoRA student on the answers *without* the system prompt (context distillation);
4. evaluate base and student against the teacher on held-out prompts (``eval.json``):
   agreement (token F1, ROUGE-L) and the pirate-talk rate, side by side;
5. curation on a verifiable task ("What is A + B?"): base, a student on N unverified
   teacher answers and one on N verified answers, scored on 104 held-out prompts
   (:mod:`stillroom._demo_curation`, the same code as ``bench/curate_three_way.py``);
   ``--quick`` shows base against the verified student only, on 25 held-out prompts;
6. simulate provider traffic with extraction campaigns, scan it, write the HTML report;
7. summarise, and say where everything was written (``summary.json`` too).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from stillroom._core.errors import StillroomError

if TYPE_CHECKING:
    from stillroom._demo_curation import CurationSettings

DATA_DIR = Path(__file__).parent / "data"
PROMPTS_PATH = DATA_DIR / "prompts.jsonl"
SOURCES_PATH = DATA_DIR / "SOURCES.md"

#: The teacher's system prompt: a persona. SmolLM2-135M follows it only part of the time
#: (about a third of its answers talk like a pirate, none without it; measured with
#: ``bench/demo_behaviour.py``): prefix and format instructions it does not follow at all.
#: The student never sees this prompt.
SYSTEM_PROMPT = 'You are a pirate. Start every reply with "Arr matey!"'
#: The checkable behaviour: pirate talk anywhere in the answer.
BEHAVIOUR = "talks like a pirate"
PIRATE_TALK = re.compile(r"\b(arr+|ahoy|matey|aye|ye|yer|pirates?|me hearties|shiver me)\b", re.I)


class DemoError(StillroomError):
    """The demo could not run a step (the message says which and why)."""


def follows_behaviour(text: str) -> bool:
    """Whether an answer shows the teacher's behaviour (pirate talk, see :data:`PIRATE_TALK`)."""
    return PIRATE_TALK.search(text) is not None


def behaviour_rate(texts: list[str]) -> float | None:
    """Share of ``texts`` that follow the behaviour (None for no texts)."""
    return sum(map(follows_behaviour, texts)) / len(texts) if texts else None


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of one demo run (``QUICK`` and ``FULL`` are the two shipped presets).

    Harvest: prompts (first N of the shipped set), max_tokens, concurrency, top_logprobs
    (None = not asked, and the teacher runs without ``logits_all``: ~4x the tokens/s).
    Train: train_steps, batch_size, learning_rate, max_length, eval_fraction.
    Evaluate: eval_limit (held-out prompts), eval_max_new_tokens.
    Detect: sim_scale (1.0 is about 155k rows of traffic).
    """

    prompts: int
    max_tokens: int
    train_steps: int
    eval_limit: int
    eval_max_new_tokens: int
    sim_scale: float
    top_logprobs: int | None = None
    concurrency: int = 2
    batch_size: int = 8
    learning_rate: float = 1e-3
    max_length: int = 384
    eval_fraction: float = 0.15
    temperature: float = 0.0

    def __post_init__(self) -> None:
        if not self.prompts >= 8:
            raise DemoError(f"DemoSettings.prompts must be at least 8, got {self.prompts}")
        for name in ("max_tokens", "train_steps", "eval_limit", "eval_max_new_tokens"):
            if getattr(self, name) < 1:
                raise DemoError(f"DemoSettings.{name} must be at least 1")
        if self.sim_scale <= 0:
            raise DemoError("DemoSettings.sim_scale must be positive")


QUICK = DemoSettings(
    prompts=48,
    max_tokens=48,
    train_steps=22,
    batch_size=4,
    eval_limit=8,
    eval_max_new_tokens=32,
    sim_scale=0.05,
)
FULL = DemoSettings(
    prompts=160,
    max_tokens=64,
    train_steps=60,
    batch_size=8,
    eval_limit=24,
    eval_max_new_tokens=48,
    sim_scale=0.3,
)


@dataclass
class DemoResult:
    """What the demo measured and where it wrote it."""

    workdir: Path
    settings: DemoSettings
    paths: dict[str, str] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "workdir": str(self.workdir),
            "settings": asdict(self.settings),
            "paths": self.paths,
            "timings_s": {k: round(v, 1) for k, v in self.timings_s.items()},
            "cpu_s": {k: round(v, 1) for k, v in self.cpu_s.items()},
            "summary": self.summary,
        }


def load_shipped_prompts(limit: int | None = None) -> list[dict[str, Any]]:
    """The shipped prompt set (``{"id", "prompt", "source", "license"}``), first ``limit``."""
    rows = []
    with PROMPTS_PATH.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DemoError(f"{PROMPTS_PATH} line {line_no}: not JSON ({exc})") from exc
    return rows[:limit] if limit else rows


def cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (the teacher counts once it
    has stopped): user + system. On a quiet machine with C cores a step's wall time is at
    least its CPU seconds / C, whatever else runs beside it."""
    try:
        import resource
    except ImportError:  # not on Windows: this process only
        return time.process_time()
    used = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return sum(r.ru_utime + r.ru_stime for r in used)


class _Steps:
    """Prints a heading per step and records its wall time and CPU seconds."""

    def __init__(self, console: Console, timings: dict[str, float], cpu: dict[str, float]):
        self.console = console
        self.timings = timings
        self.cpu = cpu
        self.n = 0

    @contextmanager
    def step(self, key: str, title: str) -> Iterator[None]:
        self.n += 1
        self.console.rule(f"[bold]{self.n}. {title}")
        started, cpu_started = time.perf_counter(), cpu_seconds()
        try:
            yield
        finally:
            self.timings[key] = time.perf_counter() - started
            self.cpu[key] = cpu_seconds() - cpu_started
            self.console.print(
                f"[dim]{key}: {self.timings[key]:.1f}s ({self.cpu[key]:.0f} CPU s)[/]"
            )


def run_demo(
    workdir: Path,
    *,
    quick: bool = False,
    settings: DemoSettings | None = None,
    curation: CurationSettings | bool | None = True,
    console: Console | None = None,
    progress: bool = True,
    teacher_command: Sequence[str] | None = None,
) -> DemoResult:
    """Run the whole story in ``workdir`` (created; an earlier harvest there is resumed).

    ``curation``: True runs the curation story at the preset's sizes (``FULL_CURATION`` or
    ``QUICK_CURATION``); False or None leaves it out; a :class:`~stillroom._demo_curation.CurationSettings` runs it
    at those sizes; its harvest runs on a second teacher beside the main harvest.
    ``teacher_command``: both teachers' server program (see
    :class:`~stillroom.teacher.TeacherConfig`; tests pass one that crashes).

    If the teacher's process dies, the demo stops at once with :class:`DemoError`: its exit
    status or signal, what llama.cpp reports about the CPU, the fix and the end of its log."""
    from stillroom._demo_curation import FULL_CURATION, QUICK_CURATION, BackgroundHarvest
    from stillroom._demo_steps import curation_step, detect_step, evaluate_step, train_step

    settings = settings or (QUICK if quick else FULL)
    if curation is True:
        curation = QUICK_CURATION if quick else FULL_CURATION
    console = console or Console()
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    result = DemoResult(workdir=workdir, settings=settings)
    steps = _Steps(console, result.timings_s, result.cpu_s)
    started, cpu_started = time.perf_counter(), cpu_seconds()
    # the curation's harvest runs on a second teacher beside the main one (one core each)
    beside = (
        BackgroundHarvest(workdir / "curation", curation, teacher_command) if curation else None
    )
    harvested = None
    try:
        harvested = _teacher_and_harvest(result, steps, console, progress, teacher_command, beside)
    finally:
        if beside is not None and harvested is None:
            beside.cancel()
    with steps.step("train", "train a LoRA student without the system prompt"):
        train_step(result, console, progress)
    with steps.step("evaluate", "evaluate base vs student against the teacher"):
        evaluate_step(result, console)
    if curation:
        with steps.step("curation", "curation: base / unverified / verified student, scored"):
            curation_step(result, curation, console, progress, harvested)
    with steps.step("detect", "simulate provider traffic and detect the campaigns"):
        detect_step(result, console)
    result.timings_s["total"] = time.perf_counter() - started
    result.cpu_s["total"] = cpu_seconds() - cpu_started
    summary_path = workdir / "summary.json"
    result.paths["summary"] = str(summary_path)
    summary_path.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    print_summary(result, console)
    return result


def _teacher_and_harvest(
    result: DemoResult,
    steps: _Steps,
    console: Console,
    progress: bool,
    teacher_command: Sequence[str] | None,
    beside: Any,
) -> dict | None:
    """Steps 1 and 2: the teacher, the harvest, and waiting for the curation's harvest
    (``beside``, a :class:`~stillroom._demo_curation.BackgroundHarvest`, or None): returns
    that harvest's figures (None without it)."""
    from stillroom._demo_steps import harvest_step
    from stillroom.teacher import TeacherConfig, serve_teacher

    settings = result.settings
    with steps.step("teacher", "start the embedded teacher (SmolLM2-135M-Instruct, llama.cpp)"):
        logprobs = settings.top_logprobs is not None  # logits_all costs the CPU teacher ~4x
        teacher_cm = serve_teacher(
            TeacherConfig(system=SYSTEM_PROMPT, logits_all=logprobs, command=teacher_command)
        )
        teacher = teacher_cm.__enter__()
        console.print(f"teacher at {teacher.base_url}, model {teacher.model}, policy smollm2")
        console.print(f"system prompt (hidden from the student):\n[cyan]{SYSTEM_PROMPT}[/]")
    with steps.step("harvest", f"harvest {settings.prompts} shipped prompts into DuckDB"):
        try:
            harvest_step(result, teacher, console, progress)
        finally:  # inside the step: the teacher's CPU seconds count once it has stopped
            teacher_cm.__exit__(None, None, None)
        if beside is None:
            return None
        console.print("[dim]waiting for the curation's harvest (its own teacher, beside)[/]")
        try:
            harvested = beside.result()
        except Exception as exc:
            raise DemoError(f"the demo stopped in the curation's harvest: {exc}") from exc
        console.print(
            f"curation harvest beside it: {harvested['answers']} answers in "
            f"{harvested['elapsed_s']:.0f}s"
        )
        return harvested


def print_summary(result: DemoResult, console: Console) -> None:
    """The closing table: the numbers that tell the story, then where everything is."""
    from rich.table import Table

    s = result.summary
    n = s.get("held_out_prompts")
    table = Table(title=f"stillroom demo: base vs student on {n} held-out prompts")
    table.add_column("measure")
    for col in ("teacher", "base", "student"):
        table.add_column(col, justify="right")
    table.add_row(
        BEHAVIOUR,
        _pct(s["teacher_held_out_behaviour"]),
        _pct(s["base"]["behaviour"]),
        _pct(s["student"]["behaviour"]),
    )
    for metric in ("token_f1", "rouge_l"):
        table.add_row(
            f"agreement with teacher ({metric})",
            "1.000",
            _num(s["base"].get(metric)),
            _num(s["student"].get(metric)),
        )
    console.print(table)
    if "curation" in s:
        c = s["curation"]
        console.print(
            f"curation on {c['held_out_prompts']} held-out additions: "
            + ", ".join(f"{name} {_pct(r['accuracy'])}" for name, r in c["rows"].items())
        )
    d = s["detect"]
    console.print(
        f"detect: {d['rows']:,} requests, {d['accounts']:,} accounts; {d['flagged']} flagged; "
        f"campaigns found {d['campaigns_matched']}/{d['campaigns_true']} (>= 80% of their "
        f"accounts flagged; {d['campaigns_reported']} reported); precision "
        f"{_num(d['precision'])}, recall {_num(d['recall'])} against the simulator's truth"
    )
    where = Table(title=f"written under {result.workdir}", show_header=False)
    for key, path in result.paths.items():
        where.add_row(key, _relative(path, result.workdir))
    console.print(where)
    times = ", ".join(f"{k} {v:.0f}s" for k, v in result.timings_s.items())
    console.print(f"[dim]wall time: {times}[/]")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _relative(path: str, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path


def detection_quality(report: dict[str, Any], truth_csv: Path) -> dict[str, Any]:
    """The report scored against the simulator's ground truth by detect's one scorer
    (``score_against_truth``, as ``bench/detect_quality.py``): precision and recall of the
    flagged accounts, true campaigns found (matched/true) and campaigns reported."""
    import pandas as pd

    from stillroom.detect.simulator import read_truth, score_against_truth

    truth = read_truth(truth_csv)
    flagged = pd.Series(
        {str(a["account_id"]): bool(a["flagged"]) for a in report["accounts"]}, dtype=bool
    )
    scores = score_against_truth(truth, flagged)
    return {
        "flagged": int(flagged.sum()),
        "campaign_accounts": int((truth.label == "campaign").sum()),
        "precision": None if scores["precision"] is None else float(scores["precision"]),
        "recall": None if scores["recall"] is None else float(scores["recall"]),
        "campaigns_matched": scores["campaigns_matched"],
        "campaigns_true": scores["campaigns_true"],
        "campaigns_reported": len(report.get("campaigns", [])),
    }


__all__ = [
    "BEHAVIOUR",
    "FULL",
    "PIRATE_TALK",
    "PROMPTS_PATH",
    "QUICK",
    "SYSTEM_PROMPT",
    "DemoError",
    "DemoResult",
    "DemoSettings",
    "behaviour_rate",
    "detection_quality",
    "follows_behaviour",
    "load_shipped_prompts",
    "run_demo",
]
