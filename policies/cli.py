"""``stillroom policies ...``: a thin Typer shell over the ``policies`` library."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from stillroom._core.cli_edge import FriendlyErrors
from stillroom.policies._loader import get_policy, load_policies, load_policy_file
from stillroom.policies._model import Policy
from stillroom.policies._resolve import host_of, match_policies, single_match

app = typer.Typer(
    cls=FriendlyErrors,
    help="Teacher terms as data: list, show, check and match policy files.",
    no_args_is_help=True,
)

_JSON = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


@app.command("list")
def list_policies(as_json: _JSON = False) -> None:
    """List every policy: the shipped ones and those in STILLROOM_POLICY_PATH."""
    policies = sorted(load_policies().values(), key=lambda p: p.id)
    if as_json:
        typer.echo(json.dumps([_brief(p) for p in policies], indent=2))
        return
    table = Table("id", "verdict", "name", "covers", "source")
    for p in policies:
        covers = "; ".join(r.describe() for r in p.covers) or "only with --policy"
        source = "shipped" if p.shipped else str(p.source)
        table.add_row(p.id, p.verdict, escape(p.name), escape(covers), escape(source))
    _console().print(table)


@app.command("show")
def show(
    policy_id: Annotated[str, typer.Argument(metavar="ID", help="A policy id (see `list`).")],
    as_json: _JSON = False,
    as_toml: Annotated[
        bool, typer.Option("--toml", help="Print the policy file as it is.")
    ] = False,
) -> None:
    """Show one policy: terms, verdict, clauses, conditions, coverage and limits."""
    policy = get_policy(policy_id)
    if as_toml:
        typer.echo(policy.source.read_text(encoding="utf-8") if policy.source else "")
    elif as_json:
        typer.echo(json.dumps(policy.to_dict(), indent=2, ensure_ascii=False))
    else:
        _print_policy(_console(), policy)


@app.command("check")
def check(
    files: Annotated[
        list[Path], typer.Argument(metavar="FILE...", help="Policy files to validate.")
    ],
    as_json: _JSON = False,
) -> None:
    """Validate policy files; a malformed one fails naming the file and the field."""
    checked = [load_policy_file(path) for path in files]
    if as_json:
        typer.echo(json.dumps([_brief(p) for p in checked], indent=2))
        return
    for p in checked:
        typer.echo(f"ok  {p.source}: {p.id} ({p.verdict}), sha256 {p.file_hash}")


@app.command("match")
def match(
    base_url: Annotated[
        str, typer.Option("--base-url", help="The API base URL harvest would call.")
    ],
    model: Annotated[str, typer.Option("--model", help="The model id harvest would ask for.")],
    as_json: _JSON = False,
) -> None:
    """Show which policy a harvest of MODEL at BASE-URL resolves to, and what it would need."""
    matches = match_policies(base_url, model)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "host": host_of(base_url),
                    "model": model,
                    "matches": [_brief(p) for p in matches],
                },
                indent=2,
            )
        )
        return
    policy = single_match(base_url, model)  # raises, listing candidates, unless exactly one
    console = _console()
    console.print(
        f"{escape(model)} at {host_of(base_url)} -> [bold]{policy.id}[/bold] ({escape(policy.name)})"
    )
    console.print(_what_harvest_needs(policy), markup=False)
    console.print(f"Clause {policy.clause}", markup=False)


def _what_harvest_needs(p: Policy) -> str:
    if p.verdict == "forbidden":
        return "harvest refuses: the terms forbid training a model on these outputs."
    if p.verdict == "conditional":
        needs = f"harvest refuses without --accept {p.id}"
        if p.conditions.needs_purpose:
            needs += " and --purpose TEXT"
        return needs + ": " + " ".join(p.conditions.sentences())
    return "harvest runs: the terms allow training on these outputs."


def _brief(p: Policy) -> dict:
    return {
        "id": p.id,
        "name": p.name,
        "verdict": p.verdict,
        "file_hash": p.file_hash,
        "source": str(p.source) if p.source else None,
        "shipped": p.shipped,
    }


def _print_policy(console: Console, p: Policy) -> None:
    console.print(f"[bold]{p.id}[/bold]: {escape(p.name)}")
    version = f", {p.terms.version}" if p.terms.version else ""
    plain = {"markup": False}
    console.print(f"terms:   {p.terms.title}{version} (read {p.terms.read})", **plain)
    if p.terms.url:
        console.print(f"         {p.terms.url}", **plain)
    console.print(f"verdict: [bold]{p.verdict}[/bold] on training a model with the outputs")
    if p.summary:
        console.print(f"reading: {p.summary}", **plain)
    for c in p.clauses:
        console.print(f"clause:  {c.quote()}", **plain)
    for sentence in p.conditions.sentences():
        console.print(f"condition: {sentence}", **plain)
    if p.conditions.notice:
        console.print(f"notice:  {p.conditions.notice}", **plain)
    for rule in p.covers:
        console.print(f"covers:  {rule.describe()}", **plain)
    if not p.covers:
        console.print("covers:  nothing by itself; name it with --policy", **plain)
    limits = {k: v for k, v in p.limits.as_dict().items() if v is not None}
    if limits:
        console.print(f"limits:  {limits}", **plain)
    for price in p.prices:
        extra = ""
        if price.usd_per_mtok_cached_in is not None:
            extra += f", cached ${price.usd_per_mtok_cached_in}/M in"
        if price.usd_per_mtok_batch_in is not None:
            extra += f", batch ${price.usd_per_mtok_batch_in}/${price.usd_per_mtok_batch_out}/M"
        if price.url:
            extra += f" ({price.url}, read {price.read})"
        console.print(
            f"price:   {', '.join(price.models)}: ${price.usd_per_mtok_in}/M in, "
            f"${price.usd_per_mtok_out}/M out{extra}",
            **plain,
        )
    console.print(f"file:    {p.source} (sha256 {p.file_hash})", **plain)
