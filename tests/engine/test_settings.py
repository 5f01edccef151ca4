import pytest

from engine.errors import UserError
from engine.settings import Settings, documented_fields


def test_defaults_follow_the_paper():
    s = Settings()
    assert (s.steps, s.guidance_scale, s.attn_injection, s.conv_injection) == (50, 7.5, 0.5, 0.8)
    assert s.keyframe_interval == 8 and s.source_features == "cached"


def test_every_field_is_documented():
    fields = documented_fields()
    assert len(fields) == len(Settings.__dataclass_fields__)
    assert all(doc for _, _, doc in fields), [n for n, _, d in fields if not d]


@pytest.mark.parametrize("bad", [dict(steps=0), dict(guidance_scale=0.5), dict(attn_injection=1.5),
                                 dict(source_features="disk"), dict(batch_size=0), dict(keyframe_interval=0)])
def test_invalid_values_are_user_errors(bad):
    with pytest.raises(UserError):
        Settings(**bad)


def test_dict_round_trip_and_unknown_keys():
    s = Settings(steps=12, keyframes=(8, 0, 8))
    assert s.keyframes == (0, 8)
    assert Settings.from_dict(s.to_dict()) == s
    with pytest.raises(UserError, match="unknown setting"):
        Settings.from_dict({"stepz": 3})


@pytest.mark.parametrize("name, value", [
    ("steps", 1.5), ("steps", float("inf")), ("steps", 10 ** 6), ("steps", True), ("steps", "50"),
    ("keyframe_interval", 1.5), ("batch_size", float("inf")), ("vae_batch_size", 257),
    ("resolution", float("inf")), ("resolution", 10 ** 6), ("resolution", 100), ("face_min_size", float("inf")),
    ("negative_prompt", None), ("negative_prompt", 5), ("negative_prompt", ["a"]), ("negative_prompt", "x" * 1001),
    ("source_prompt", None), ("seed", "abc"), ("seed", None), ("seed", float("nan")), ("seed", -1),
    ("device", "meta"), ("device", 0), ("dtype", "float64"), ("guidance_scale", float("inf")),
    ("guidance_scale", 1e308), ("guidance_scale", float("nan")), ("guidance_scale", False),
    ("attn_injection", float("nan")), ("keyframes", ["x"]), ("keyframes", [float("nan")]),
    ("keyframes", [float("inf")]), ("keyframes", [1.5]), ("keyframes", [-1]), ("keyframes", 3),
    ("keyframes", "0,8"), ("face_models", 5), ("face_reference", ["/etc/passwd"]), ("face_subject", 2),
    ("qc_identity_threshold", float("inf")), ("qc_every", None), ("face_mode", ["crop"]),
])
def test_every_wrong_type_or_bound_is_a_one_sentence_error_naming_the_field(name, value):
    with pytest.raises(UserError) as err:
        Settings.from_dict({name: value})
    message = str(err.value)
    assert message.startswith(name + " ") and message.endswith(".") and message.count(". ") == 0, message


@pytest.mark.parametrize("values", [dict(steps=1000, guidance_scale=50, resolution=4096, seed=2 ** 63 - 1),
                                    dict(device="cuda:1", dtype="bf16", batch_size=256, resolution=8),
                                    dict(device="cpu", dtype="float32", guidance_scale=1, keyframes=[0, 3])])
def test_values_at_the_bounds_are_accepted(values):
    s = Settings.from_dict(values)
    assert all(getattr(s, k) == (tuple(v) if isinstance(v, list) else v) for k, v in values.items())


def test_numbers_are_normalised_to_the_field_type():
    import numpy as np

    s = Settings(steps=np.int64(12), guidance_scale=7, keyframes=[np.int32(8), 0, 8])
    assert type(s.steps) is int and type(s.guidance_scale) is float and s.keyframes == (0, 8)


def test_path_settings_come_from_field_metadata():
    from engine.settings import path_fields

    assert path_fields() == ("face_models", "face_reference")


def test_protocol_doc_lists_every_setting_as_generated():
    from pathlib import Path

    from engine.settings import settings_table

    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    table = settings_table()
    assert table in doc, "docs/protocol.md is stale: paste engine.settings.settings_table() into it"
    for name, _, _ in documented_fields():
        assert f"| `{name}` |" in table
    assert "| `steps` | int | `50` | from 1 to 1000 |" in table
