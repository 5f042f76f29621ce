"""``python -m stillroom.train sft ...``: the train CLI alone (what ``accelerate launch -m stillroom.train`` runs)."""

from stillroom._core.cli_edge import run_app
from stillroom.train.cli import app


def main() -> None:
    run_app(app, prog_name="python -m stillroom.train")


if __name__ == "__main__":
    main()
