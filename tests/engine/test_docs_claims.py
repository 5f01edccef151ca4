"""What README and the docs say about the command line is what it does: flags that exist, the
limits that are `serve` flags, the progress lines as printed."""

from __future__ import annotations

import argparse
import io
import re
from pathlib import Path

from engine.cli import build_parser
from engine.progress import StageProgress

ROOT = Path(__file__).resolve().parents[2]
PROGRESS_LINE = re.compile(r"(invert|edit|decode) +\d+%  step \d+  elapsed \d+:\d\d  ETA (\?|\d+:\d\d)")


def _flags(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, set[str]]:
    """Each subcommand's flags, nested ones (`farm bundle`) included."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    flags = {}
    for name, p in sub.choices.items():
        flags[prefix + name] = {f for a in p._actions for f in a.option_strings}
        if any(isinstance(a, argparse._SubParsersAction) for a in p._actions):
            flags |= _flags(p, prefix + name + " ")
    return flags


def test_every_flag_the_readme_and_the_engine_and_protocol_docs_name_exists():
    known = set().union(*_flags(build_parser()).values())
    for doc in ("README.md", "docs/protocol.md", "docs/engine.md"):
        named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", (ROOT / doc).read_text()))
        assert named - known == set(), doc


def test_the_limits_the_protocol_calls_serve_flags_are_exactly_the_serve_flags():
    text = (ROOT / "docs/protocol.md").read_text()
    section = text[text.index("## Limits"):text.index("## Security")]
    retention = {"--max-results-bytes"}  # a serve flag, not a request limit
    serve = {f for f in _flags(build_parser())["serve"] if f.startswith("--max-")} - retention
    assert set(re.findall(r"`(--max-[a-z-]+)`", section)) == serve
    rows = re.findall(r"^\| `(\w+)` \|", section, flags=re.M)
    fixed = {name for name in rows if "--" + name.replace("_", "-") not in serve}
    assert fixed == {"max_header_bytes", "max_prompt_chars", "max_pending"}
    assert "each a `serve` flag" not in section


def test_the_readme_progress_example_is_what_edit_prints():
    text = (ROOT / "README.md").read_text()
    shown = [line.removeprefix("[RANDOM WEIGHTS] ") for line in text.splitlines()
             if re.match(r"\[RANDOM WEIGHTS\] (invert|edit|decode) ", line)]
    assert len(shown) >= 3 and all(PROGRESS_LINE.fullmatch(line) for line in shown), shown
    stream = io.StringIO()
    progress = StageProgress(stream, tty=False)
    progress("invert", 0, 0.0)
    progress("edit", 3, 0.5)
    assert all(PROGRESS_LINE.fullmatch(line) for line in stream.getvalue().splitlines())
