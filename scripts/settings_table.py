#!/usr/bin/env python3
"""Write docs/settings.md from the settings declarations (`make docs`); with --check, fail
when the committed file differs or a service reads a variable not declared (`make lint`)."""

from __future__ import annotations

import argparse
import sys

from emeuse.settings_doc import OUTPUT, render, undeclared


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args()
    missing = undeclared()
    if missing:
        print(
            f"read but not declared as a Setting: {', '.join(missing)} "
            "(declare it in the service's config.SETTINGS or emeuse.runtime.settings)",
            file=sys.stderr,
        )
        return 1
    text = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(
                f"{OUTPUT.name} is stale: run 'make docs' and commit docs/settings.md",
                file=sys.stderr,
            )
            return 1
        print("docs: the settings table is up to date")
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
