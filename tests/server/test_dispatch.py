"""Protocol dispatch: every request type in `protocol.REQUESTS` has exactly one handler (checked
when the service is imported), the request and reply types and fields are the documented ones, and the server's
modules import each other without a cycle dodged inside a function."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from server import protocol as P

ROOT = Path(__file__).resolve().parents[2]


def test_every_request_type_has_a_handler_and_every_handler_a_request_type():
    from server.service import Service

    assert set(Service.HANDLERS) == set(P.REQUESTS)
    assert Service.HANDLERS["PREVIEW"] is Service.HANDLERS["SUBMIT"]


def test_a_handler_table_missing_a_request_type_is_refused_naming_it():
    handlers = {kind: print for kind in P.REQUESTS if kind != "LIST"}
    with pytest.raises(TypeError, match="'LIST'"):
        P.handler_table(handlers)
    with pytest.raises(TypeError, match="'PING'"):
        P.handler_table({**handlers, "LIST": print, "PING": print})
    assert set(P.handler_table({**handlers, "LIST": print})) == set(P.REQUESTS)


def test_the_reply_type_constants_are_the_types_docs_protocol_lists():
    text = (ROOT / "docs" / "protocol.md").read_text()
    replies = text.split("## Replies")[1].split("\n## ")[0]
    events = text.split("## Events")[1].split("\n## ")[0]
    documented = set(re.findall(r"^\| `([A-Z]+)` \|", replies + events, re.M))
    assert documented == {P.HELLO, P.ACCEPTED, P.STATE, P.LIST, P.RESULT, P.RELEASED, P.HEARTBEAT, P.OK, P.ERROR,
                          P.PROGRESS}
    assert P.error("internal", "x")["type"] == P.ERROR


def _documented_requests() -> dict[str, dict[str, bool]]:
    """docs/protocol.md's requests table: type -> {field: optional?} (top-level fields only)."""
    text = (ROOT / "docs" / "protocol.md").read_text()
    table = text.split("## Requests")[1].split("\n## ")[0]
    rows = dict(re.findall(r"^\| `([A-Z]+)` \| (.*?) \| `[A-Z]+` \|$", table, re.M))
    fields = {kind: {name: bool(opt) for name, opt in re.findall(r"`([a-z_]+)(\?)?:", cells)}
              for kind, cells in rows.items()}
    for kind, cells in rows.items():
        base = re.match(r"as ([A-Z]+), plus", cells)
        if base:
            fields[kind] = {**fields[base.group(1)], **fields[kind]}
    return fields


def test_the_requests_table_in_docs_protocol_is_the_protocols_request_list():
    documented = _documented_requests()
    assert set(documented) == set(P.REQUESTS)
    for kind, spec in P.REQUESTS.items():
        assert set(documented[kind]) == set(spec), kind
        for name, optional in documented[kind].items():
            if optional:  # `name?:` in the docs: the protocol must not require it
                assert spec[name][1] is False, (kind, name)
            elif name not in ("frames", "input"):  # SUBMIT's "exactly one of" pair, checked by the handler
                assert spec[name][1] is True, (kind, name)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_the_worker_and_the_job_store_do_not_import_the_service():
    for name in ("worker.py", "jobs.py", "cache.py"):
        assert "server.service" not in _imports(ROOT / "server" / name), name
    from server.jobs import job_info  # the public view of a job lives with the jobs

    assert job_info.__module__ == "server.jobs"
