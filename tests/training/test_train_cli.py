"""`ipfacediff train` flags are generated from `TrainConfig` (engine.dataclass_cli): names, types,
choices, defaults and help come from the dataclass; the flags users know keep their names."""

from __future__ import annotations

import argparse
import dataclasses
import typing

import pytest

from engine.dataclass_cli import add_dataclass_flags, dataclass_values, documented_fields
from engine.training.cli import ROLE_FIELDS, config_from_args, register
from engine.training.config import TrainConfig

REQUIRED = ["--data", "faces/", "--out", "eps/"]


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ipfacediff")
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def _help(argv: list[str], capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "2000")  # no wrapping inside a help text
    with pytest.raises(SystemExit):
        _parse([*argv, "--help"])
    return " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("role", ["identity", "direction"])
def test_every_field_the_role_reads_is_a_flag_with_its_docstring_and_dataclass_default(role, capsys, monkeypatch):
    text = _help(["train", role], capsys, monkeypatch)
    others = {name for r, names in ROLE_FIELDS.items() if r != role for name in names}
    for name, default, doc in documented_fields(TrainConfig):
        assert doc, f"TrainConfig.{name} has no docstring"
        flag = "--" + ("no-" if default is True else "") + name.replace("_", "-")
        if name == "role" or name in others:
            assert f"{flag} " not in text, name
            continue
        assert f"{flag} " in text, name
        shown = ",".join(default) if isinstance(default, tuple) else default
        if isinstance(default, bool) or default is dataclasses.MISSING:
            assert f" {doc}" in text, name
        else:
            assert f" {doc} (default: {shown})" in text, name


@pytest.mark.parametrize("role", ["identity", "direction"])
def test_only_the_required_flags_give_the_dataclass_defaults(role):
    assert config_from_args(_parse(["train", role, *REQUIRED])) == TrainConfig(role, "faces/", "eps/")


def test_the_flags_users_know_keep_their_names_and_reach_the_config():
    cfg = config_from_args(_parse(["train", "identity", *REQUIRED, "--preset", "tiny", "--lr", "3e-4", "--no-flip",
                                   "--lora-targets", "to_q, to_v", "--mixed-precision", "bf16", "--full",
                                   "--resume", "latest", "--face-embedder", "tiny", "--l1-weight", "2",
                                   "--lora-alpha", "8", "--t-min", "5", "--t-max", "50", "--cpu"]))
    assert (cfg.model, cfg.learning_rate, cfg.flip, cfg.lora_targets) == ("tiny", 3e-4, False, ("to_q", "to_v"))
    assert (cfg.mixed_precision, cfg.full, cfg.resume, cfg.face_embedder) == ("bf16", True, "latest", "tiny")
    assert (cfg.l1_weight, cfg.lora_alpha, cfg.t_min, cfg.t_max, cfg.cpu) == (2.0, 8.0, 5, 50, True)
    cfg = config_from_args(_parse(["train", "direction", *REQUIRED, "--edits", "builtin", "--clip", "tiny",
                                   "--lambda1", "0.1", "--direction-ref", "image", "--weight-decay", "0"]))
    assert (cfg.edits, cfg.clip, cfg.lambda1, cfg.direction_ref, cfg.weight_decay) == ("builtin", "tiny", 0.1,
                                                                                       "image", 0.0)


@pytest.mark.parametrize("argv", [[*REQUIRED, "--preset", "tiny", "--model", "some/model"],
                                  [*REQUIRED, "--lr-scheduler", "cosine_ish"],
                                  [*REQUIRED, "--edits", "builtin"],  # a direction flag
                                  ["--out", "eps/"]])
def test_conflicting_unknown_or_missing_identity_flags_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        _parse(["train", "identity", *argv])
    assert exc.value.code == 2


@dataclasses.dataclass
class Knobs:
    name: str
    """Required name."""
    steps: int = 3
    """How many steps."""
    mode: typing.Literal["a", "b"] = "a"
    """Which mode."""
    sizes: tuple[int, ...] = (1, 2)
    """Sizes, comma-separated."""
    fast: bool = False
    """Go fast."""
    safe: bool = True
    """Stay safe."""


@dataclasses.dataclass
class SevenSteps:
    name: str
    """Required name."""
    steps: int = 7
    """How many steps."""


@pytest.mark.parametrize("cls,steps", [(Knobs, 3), (SevenSteps, 7)])
def test_a_dataclass_default_is_the_generated_flags_default_in_help_and_parse(cls, steps, capsys, monkeypatch):
    parser = argparse.ArgumentParser()
    add_dataclass_flags(parser, cls)
    monkeypatch.setenv("COLUMNS", "2000")
    assert f"How many steps. (default: {steps})" in parser.format_help()
    assert cls(**dataclass_values(cls, parser.parse_args(["--name", "x"]))).steps == steps


def test_annotations_give_types_choices_switches_and_required_flags(capsys):
    parser = argparse.ArgumentParser()
    add_dataclass_flags(parser, Knobs, aliases={"steps": ["-n"]})
    args = parser.parse_args(["--name", "x", "-n", "4", "--mode", "b", "--sizes", "5, 6", "--fast", "--no-safe"])
    assert Knobs(**dataclass_values(Knobs, args)) == Knobs("x", 4, "b", (5, 6), True, False)
    for bad in (["--name", "x", "--mode", "c"], ["--steps", "4"], ["--name", "x", "--safe"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
