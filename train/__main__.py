"""``python -m train sft ...``: the train CLI alone (what ``accelerate launch -m train`` runs)."""

from stillroom_core.cli_edge import run_app
from train.cli import app


def main() -> None:
    run_app(app, prog_name="python -m train")


if __name__ == "__main__":
    main()
