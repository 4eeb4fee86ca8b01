"""How every benchmark hands over its figures: printed, and written as JSON for bench/RESULTS.md to quote."""

from __future__ import annotations

import json
from pathlib import Path


def print_figures(figures: object, json_path: Path | None) -> None:
    """Print ``figures`` as indented JSON and, with ``json_path``, write the same to that file."""
    text = json.dumps(figures, indent=2)
    print(text)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(text + "\n")
