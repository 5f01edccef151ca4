"""One home for each limit and default the layers share: the prompt check (engine.prompts), the
prompt and path limits (engine.settings), the engine address (server.protocol). The OFX plugin's
C++ cannot import them, so its copies are read from its source and compared here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server import protocol as P

ROOT = Path(__file__).resolve().parents[2]
OFX = ROOT / "plugin_ofx" / "src"


def _submit(prompt: str) -> list:
    header = {"type": "SUBMIT", "id": 1, "job": "j1", "prompt": prompt, "input": {"path": "/media/a.mov"}}
    return P.pack(header)


def test_a_blank_prompt_is_refused_by_the_protocol_as_by_the_cli():
    from engine.prompts import check_prompt, prompt_problem
    from engine.errors import UserError

    for prompt in ("   ", "\n\t"):
        with pytest.raises(UserError, match="the prompt is empty"):
            check_prompt(prompt)
        with pytest.raises(P.ProtocolError) as err:
            P.unpack(_submit(prompt))
        assert err.value.code == "bad_field" and err.value.message == prompt_problem(prompt)


def test_a_prompt_at_the_limit_with_surrounding_blanks_is_accepted_everywhere():
    from engine.prompts import check_prompt
    from engine.settings import MAX_PROMPT_CHARS
    from plugin_resolve.errors import NoResolve
    from plugin_resolve.flow import EditRun

    prompt = " " + "x" * MAX_PROMPT_CHARS + "\n"
    assert check_prompt(prompt) == "x" * MAX_PROMPT_CHARS
    assert P.unpack(_submit(prompt)).header["prompt"] == prompt
    with pytest.raises(NoResolve):  # past the prompt check, stopped only by the missing Resolve
        EditRun(None, prompt)
    with pytest.raises(P.ProtocolError):
        P.unpack(_submit("x" * (MAX_PROMPT_CHARS + 1)))
    assert P.Limits().to_dict()["max_prompt_chars"] == MAX_PROMPT_CHARS


def test_every_default_engine_address_is_the_protocols():
    from plugin_resolve.errors import DEFAULT_ENGINE
    from server.service import Options

    assert Options().bind == DEFAULT_ENGINE == P.DEFAULT_ADDRESS
    params = (OFX / "params.cpp").read_text()
    address = re.search(r'text_param\("address",.*?"(tcp://[^"]+)"\)', params, re.S)
    assert address is not None and address.group(1) == P.DEFAULT_ADDRESS


def test_the_ofx_plugins_default_limits_are_the_protocols():
    header = (OFX / "engine_client.h").read_text()
    body = re.search(r"struct Limits \{(.*?)\};", header, re.S).group(1)
    found = {}
    for name, expr in re.findall(r"(\w+) = ([^,;]+)", body):
        found[name] = eval(re.sub(r"std::int64_t\((\d+)\)", r"\1", expr), {})  # C++ integer literals only
    expected = P.Limits().to_dict()
    assert found and all(found[name] == expected[name] for name in found), (found, expected)
