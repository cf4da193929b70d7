"""Print the README's fenced code blocks marked ``<!-- ci:NAME -->``, in the order asked.

CI runs the README's own install and test commands instead of a copy of them:
``python3 .ci/readme_blocks.py install test | bash -euo pipefail``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

MARKED_BLOCK = re.compile(r"<!-- ci:(\w+) -->\s*\n```\w*\n(.*?)\n```", re.S)


def blocks(readme: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, body in MARKED_BLOCK.findall(readme.read_text(encoding="utf-8")):
        if name in found:
            raise SystemExit(f"README marks two blocks ci:{name}")
        found[name] = body
    return found


def main(names: list[str]) -> None:
    readme = Path(__file__).resolve().parents[1] / "README.md"
    found = blocks(readme)
    for name in names:
        if name not in found:
            raise SystemExit(f"README has no block marked <!-- ci:{name} -->")
        print(f"# --- README block ci:{name} ---\n{found[name]}")


if __name__ == "__main__":
    main(sys.argv[1:])
