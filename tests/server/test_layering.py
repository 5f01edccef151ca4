"""Layering: the engine imports neither the server nor the plugins (they register their
subcommands through the `ipfacediff.commands` entry points), yet the one `ipfacediff` command
still offers all of them, and `edit --engine` is declared with the edit command itself."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTER = ("server", "plugin_resolve", "plugin_ofx")


def _names_outer(path: Path) -> list[str]:
    """Imports of the outer layers in `path`, at any level, and module paths of them in strings."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else \
            [node.value] if isinstance(node, ast.Constant) and isinstance(node.value, str) else []
        found += [n for n in names if n.split(".")[0] in OUTER and (n.count(".") or not isinstance(node, ast.Constant))]
    return found


def test_no_engine_module_imports_or_names_the_server_or_a_plugin():
    offenders = {str(p.relative_to(ROOT)): _names_outer(p) for p in sorted((ROOT / "engine").rglob("*.py"))}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_ipfacediff_command_still_offers_every_part_and_edit_takes_engine():
    from engine.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert {"edit", "demo", "serve", "keys", "farm", "train", "qc", "eval", "install-resolve", "resolve-edit",
            "install-ofx"} <= set(commands)
    edit = commands["edit"]
    assert {"--engine", "--engine-keys"} <= {s for a in edit._actions for s in a.option_strings}
    args = parser.parse_args(["edit", "in", "--prompt", "x", "--out", "o", "--engine", "tcp://127.0.0.1:1"])
    assert args.engine == "tcp://127.0.0.1:1" and args.func.__module__ == "engine.cli"

