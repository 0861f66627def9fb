"""python -m prompt_studio snapshot --url URL --key KEY [--label production] --out FILE"""

from __future__ import annotations

import argparse
import os
import sys

from prompt_studio.client import Studio, StudioError, StudioUnavailable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prompt_studio")
    commands = parser.add_subparsers(dest="command", required=True)
    snapshot = commands.add_parser("snapshot", help="Write every prompt released under a label to a file.")
    snapshot.add_argument(
        "--url", default=os.environ.get("PROMPT_STUDIO_URL"), required="PROMPT_STUDIO_URL" not in os.environ
    )
    snapshot.add_argument(
        "--key", default=os.environ.get("PROMPT_STUDIO_KEY"), required="PROMPT_STUDIO_KEY" not in os.environ
    )
    snapshot.add_argument("--label", default="production")
    snapshot.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    try:
        path = Studio(args.url, args.key).save_snapshot(args.out, label=args.label)
    except (StudioError, StudioUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
