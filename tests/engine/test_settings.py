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
