"""The demo's steps, each a few library calls: harvest, train, evaluate, curation, detect.

Each step reads the run's :class:`~stillroom.demo.DemoResult` (workdir, settings), does its
work through the packages' public APIs and records paths and figures on it.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from stillroom._demo_curation import CurationSettings
from stillroom.demo import (
    BEHAVIOUR,
    SOURCES_PATH,
    SYSTEM_PROMPT,
    DemoError,
    DemoResult,
    behaviour_rate,
    detection_quality,
    load_shipped_prompts,
)
from stillroom.teacher import POLICY_ID, TeacherServer


def harvest_step(result: DemoResult, teacher: TeacherServer, console: Console, progress: bool):
    """Harvest the first ``settings.prompts`` shipped prompts; export with a dataset card."""
    from stillroom.harvest import HarvestConfig, arun_harvest, export_dataset
    from stillroom.teacher import TeacherExited

    s = result.settings
    db = result.workdir / "harvest.duckdb"
    prompts = [{"id": p["id"], "prompt": p["prompt"]} for p in load_shipped_prompts(s.prompts)]
    config = HarvestConfig(
        prompts=prompts,
        db=db,
        base_url=teacher.base_url,
        model=teacher.model,
        policy=POLICY_ID,
        purpose="stillroom demo: context distillation of a system prompt",
        system=SYSTEM_PROMPT,
        max_tokens=s.max_tokens,
        temperature=s.temperature,
        top_logprobs=s.top_logprobs,
        concurrency=s.concurrency,
        request_timeout=300.0,
    )
    try:  # a dead teacher stops the harvest at once, not after minutes of retries
        run = teacher.run_while_alive(arun_harvest(config, progress=progress))
    except TeacherExited as exc:
        raise DemoError(f"the demo stopped in its harvest: {exc}") from exc
    if run.failed or run.stopped_reason:
        raise DemoError(
            f"harvest did not finish: {run.failed} failed, stopped: {run.stopped_reason} "
            f"({run.message}); run the demo again to resume"
        )
    exported = export_dataset(db, result.workdir / "dataset" / "harvest.jsonl", format="jsonl")
    _cite_prompt_sources(exported.card_path)
    answers = [json.loads(line)["messages"][-1]["content"] for line in exported.path.open()]
    teacher_rate = behaviour_rate(answers)
    tokens = run.completion_tokens
    result.paths.update(
        db=str(db), dataset=str(exported.path), dataset_card=str(exported.card_path)
    )
    result.summary["harvest"] = {
        "answers": exported.rows,
        "new_answers": run.completed,
        "completion_tokens": tokens,
        "tokens_per_s": round(tokens / run.elapsed_s, 1) if run.elapsed_s else None,
        "elapsed_s": round(run.elapsed_s, 1),
    }
    result.summary["teacher"] = {"behaviour": teacher_rate}
    console.print(
        f"{exported.rows} answers in {db.name} ({run.completed} new, {tokens} tokens in "
        f"{run.elapsed_s:.0f}s); {100 * (teacher_rate or 0):.0f}% {BEHAVIOUR}"
    )


def _cite_prompt_sources(card_path: Path) -> None:
    """Append the shipped prompt set's sources and licences to the dataset card."""
    sources = SOURCES_PATH.read_text(encoding="utf-8")
    sources = sources.replace("# Sources of `prompts.jsonl`", "## Prompts: sources and licences", 1)
    with card_path.open("a", encoding="utf-8") as fh:
        fh.write("\n" + sources)


def train_step(result: DemoResult, console: Console, progress: bool) -> None:
    """LoRA SFT on the harvest with the system prompt dropped (context distillation)."""
    from stillroom.train import TrainConfig, train_sft

    s = result.settings
    _quiet_libraries()
    _use_free_cores(result, "train", console)
    config = TrainConfig(
        db=Path(result.paths["db"]),
        out=result.workdir / "student",
        drop_system=True,
        reasoning="drop",
        finish_reasons=("stop", "length"),  # short answers cut at max_tokens still teach
        eval_fraction=s.eval_fraction,
        max_steps=s.train_steps,
        per_device_train_batch_size=s.batch_size,
        learning_rate=s.learning_rate,
        lr_scheduler_type="constant_with_warmup",
        warmup=0.1,
        max_length=s.max_length,
        logging_steps=max(1, s.train_steps // 10),
        progress=progress,
        name="smollm2-stillroom-student",
    )
    trained = train_sft(config)
    result.paths.update(
        adapter=str(trained.adapter_dir),
        model_card=str(trained.model_card_path),
        train_metrics=str(trained.metrics_path),
    )
    if trained.notice_path:
        result.paths["notice"] = str(trained.notice_path)
    result.summary["train"] = _train_figures(trained.metrics)
    loss = result.summary["train"].get("train_loss")
    console.print(
        f"student {trained.name}: {s.train_steps} steps, final train loss "
        f"{'-' if loss is None else f'{loss:.3f}'}; adapter in {trained.adapter_dir}"
    )


def _quiet_libraries() -> None:
    """Keep the demo's output to its own story: no library chatter or nested progress bars."""
    import datasets
    import transformers

    logging.getLogger("stillroom.train").setLevel(logging.WARNING)
    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)


def torch_threads(cores: int, busy: float) -> int:
    """torch threads for ``cores`` CPUs while other work holds ``busy`` of them: the free ones.

    torch's threads wait for each other at every op, so a thread that another process holds
    stalls the rest: on 2 cores at load 7 a demo training step took 56 s on 2 threads and
    17 s on 1 (docs/teacher-demo-notebooks.md). At least 1, at most ``cores``.
    """
    return max(1, min(cores, round(cores - busy)))


def busy_cores(
    loadavg: Path = Path("/proc/loadavg"),
    samples: int = 5,
    every_s: float = 0.1,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Threads other than this one runnable right now: the mean over ``samples`` reads of
    the running count in ``/proc/loadavg``, minus one (this one). The 1-minute load average
    would still count this demo's own teacher, which stopped a moment ago. Where there is no
    such file: the 1-minute load average (0 where there is none either)."""
    counts = []
    for i in range(samples):
        try:
            counts.append(int(loadavg.read_text().split()[3].split("/")[0]) - 1)
        except (OSError, ValueError, IndexError):
            return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        if i + 1 < samples:
            sleep(every_s)
    return max(0.0, sum(counts) / len(counts))


def _use_free_cores(result: DemoResult, step: str, console: Console) -> None:
    """Set torch's threads for ``step`` (see :func:`torch_threads`); recorded in the summary."""
    import torch

    cores, busy = os.cpu_count() or 1, busy_cores()
    threads = torch_threads(cores, busy)
    torch.set_num_threads(threads)
    record = {"busy_cores": round(busy, 1), "threads": threads}
    result.summary.setdefault("torch_threads", {})[step] = record
    console.print(f"[dim]torch on {threads} of {cores} cores ({busy:.1f} busy with other work)[/]")


def _train_figures(metrics: dict[str, Any]) -> dict[str, Any]:
    keep = ("train_loss", "train_runtime", "train_tokens", "train_tokens_per_second", "global_step")
    return {k: metrics[k] for k in keep if k in metrics}


def evaluate_step(result: DemoResult, console: Console) -> None:
    """Base vs student on held-out prompts: train's metrics plus the behaviour rate."""
    from stillroom.train import EvalConfig, evaluate_student, render_report

    s = result.settings
    out = result.workdir / "eval.json"
    report = evaluate_student(
        EvalConfig(
            db=Path(result.paths["db"]),
            adapter=Path(result.paths["adapter"]),
            out=out,
            limit=s.eval_limit,
            max_new_tokens=s.eval_max_new_tokens,
        )
    )
    examples = report["examples"]
    behaviour = {
        side: behaviour_rate([e[side] for e in examples]) for side in ("teacher", "base", "student")
    }
    report["behaviour"] = {"what": BEHAVIOUR, **behaviour}
    out.write_text(json.dumps(report, indent=2) + "\n")
    for renderable in render_report(report):
        console.print(renderable)
    result.paths["eval"] = str(out)
    result.summary["held_out_prompts"] = report["n_prompts"]
    result.summary["teacher_held_out_behaviour"] = behaviour["teacher"]
    for side in ("base", "student"):
        result.summary[side] = {**report[side], "behaviour": behaviour[side]}


def curation_step(
    result: DemoResult,
    settings: CurationSettings,
    console: Console,
    progress: bool,
    harvested: dict | None = None,
) -> None:
    """The curation story (:func:`stillroom._demo_curation.run_curation`) in ``curation/``;
    ``harvested``: its harvest's figures when the demo ran it beside the main harvest."""
    from stillroom._demo_curation import render_curation, run_curation

    _quiet_libraries()
    _use_free_cores(result, "curation", console)
    figures = run_curation(result.workdir / "curation", settings, progress, harvested)
    for renderable in render_curation(figures):
        console.print(renderable)
    result.paths["curation"] = str(result.workdir / "curation" / "curation.json")
    result.summary["curation"] = figures


def detect_step(result: DemoResult, console: Console) -> None:
    """Simulated provider traffic with campaigns -> scan -> JSON, CSV and HTML reports."""
    from stillroom.detect import ScanConfig, scan, simulate, write_html_report

    out_dir = result.workdir / "detect"
    out_dir.mkdir(exist_ok=True)
    sim = simulate(out_dir / "traffic.parquet", seed=0, scale=result.settings.sim_scale)
    console.print(f"simulated {sim.rows:,} requests from {sim.accounts:,} accounts")
    scanned = scan([sim.traffic_path], config=ScanConfig(workdir=out_dir))
    report = scanned.report
    paths = {
        "traffic": sim.traffic_path,
        "truth": sim.truth_path,
        "detect_json": scanned.write_json(out_dir / "report.json"),
        "detect_csv": scanned.write_csv(out_dir / "accounts.csv"),
        "detect_html": out_dir / "report.html",
    }
    write_html_report(report, paths["detect_html"])
    result.paths.update({k: str(v) for k, v in paths.items()})
    quality = detection_quality(report, sim.truth_path)
    result.summary["detect"] = {
        "rows": sim.rows,
        "accounts": sim.accounts,
        "campaigns_simulated": sim.campaigns,
        **quality,
    }
    console.print(
        f"{quality['flagged']} accounts flagged; campaigns found {quality['campaigns_matched']}"
        f"/{quality['campaigns_true']} ({quality['campaigns_reported']} reported); "
        f"report: {paths['detect_html']}"
    )
