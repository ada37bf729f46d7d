"""Render the variable table of each role README from its argument spec.

The table sits between two marker lines in roles/<role>/README.md, so the
rest of the README stays hand-written. `--write` updates the files and
`--check` exits 1 when a table is out of date.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BEGIN = "<!-- BEGIN VARIABLES: generated from meta/argument_specs.yml by `make docs` -->"
END = "<!-- END VARIABLES -->"
MARKUP = re.compile(r"\b[CIOV]\(([^)]*)\)")


def plain(text: str) -> str:
    """Replace Ansible doc markup such as C(x) and O(y) by Markdown code."""
    return MARKUP.sub(lambda match: f"`{match.group(1)}`", text)


def describe(option: dict) -> str:
    description = option.get("description", "")
    if isinstance(description, list):
        description = " ".join(description)
    text = plain(" ".join(str(description).split()))
    if "choices" in option:
        choices = ", ".join(f"`{choice}`" for choice in option["choices"])
        text = f"{text} Choices: {choices}."
    if "options" in option:
        keys = ", ".join(f"`{key}`" for key in option["options"])
        text = f"{text} Keys of each item: {keys}."
    return text.replace("|", "\\|")


def type_of(option: dict) -> str:
    kind = option.get("type", "str")
    if kind == "list" and "elements" in option:
        return f"list of {option['elements']}"
    return kind


def default_of(option: dict) -> str:
    if option.get("required"):
        return "required"
    if "default" not in option:
        return ""
    if isinstance(option["default"], str):
        return f"`{option['default']}`".replace("|", "\\|")
    default = yaml.safe_dump(option["default"], default_flow_style=True, width=1000)
    default = default.strip().removesuffix("...").strip()
    return f"`{default}`".replace("|", "\\|")


def render_table(spec_path: Path) -> str:
    spec = yaml.safe_load(spec_path.read_text())["argument_specs"]["main"]
    lines = [BEGIN, "", "| Variable | Type | Default | Description |", "|---|---|---|---|"]
    for name, option in spec.get("options", {}).items():
        lines.append(
            f"| `{name}` | {type_of(option)} | {default_of(option)} | {describe(option)} |"
        )
    lines += ["", END]
    return "\n".join(lines)


def updated_readme(role: Path) -> tuple[str, str]:
    readme = role / "README.md"
    current = readme.read_text()
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(current):
        raise SystemExit(f"{readme}: the marker lines of the variable table are missing")
    table = render_table(role / "meta" / "argument_specs.yml")
    return current, pattern.sub(lambda _match: table, current)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="update the READMEs in place")
    mode.add_argument("--check", action="store_true", help="fail when a table is out of date")
    args = parser.parse_args()

    stale = []
    for role in sorted(path.parent for path in (ROOT / "roles").glob("*/README.md")):
        current, expected = updated_readme(role)
        if current == expected:
            continue
        if args.write:
            (role / "README.md").write_text(expected)
            print(f"updated {role.relative_to(ROOT)}/README.md")
        else:
            stale.append(role.name)
    if stale:
        print(f"out of date: {', '.join(stale)}; run `make docs`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
