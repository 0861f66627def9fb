"""python -m prompt_studio: the same commands as the prompt-studio console script (see prompt_studio.cli)."""

from __future__ import annotations

import sys

from prompt_studio.cli import main

if __name__ == "__main__":
    sys.exit(main())
