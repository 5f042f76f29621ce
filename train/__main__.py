"""``python -m train sft ...``: the train CLI alone (what ``accelerate launch -m train`` runs)."""

import sys

from stillroom.errors import StillroomError
from train.cli import app


def main() -> None:
    try:
        app(prog_name="python -m train")
    except StillroomError as exc:  # the same one-line message as the root CLI
        sys.exit(f"Error: {exc}")


if __name__ == "__main__":
    main()
