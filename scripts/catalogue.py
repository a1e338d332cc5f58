#!/usr/bin/env python3
"""Write docs/catalogue.md from the registry and the proto comments (`make docs`);
with --check, fail when the committed file differs (`make lint`)."""

from __future__ import annotations

import argparse
import sys

from emeuse.catalogue import OUTPUT, render


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(
                f"{OUTPUT.name} is stale: run 'make docs' and commit docs/catalogue.md",
                file=sys.stderr,
            )
            return 1
        print("docs: the event catalogue is up to date")
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
