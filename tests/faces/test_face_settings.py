"""Face and QC settings: validated, documented, round-trip through dicts and the CLI."""

import pytest

from engine.errors import UserError
from engine.settings import Settings


@pytest.mark.parametrize("bad", [dict(face_mode="crops"), dict(face_subject="biggest"), dict(face_subject="reference"),
                                 dict(face_feather=0.5), dict(face_color_match=2.0), dict(face_min_size=2),
                                 dict(face_paste="paint"), dict(qc_every=-1), dict(qc_identity_threshold=0),
                                 dict(face_detector="yolo"), dict(face_embedder="vgg")])
def test_invalid_face_settings_are_user_errors(bad):
    with pytest.raises(UserError):
        Settings(**bad)


def test_face_settings_round_trip_and_cli_flags():
    from engine.faces.cli import _settings, add_face_flags
    import argparse

    s = Settings(face_mode="full", face_subject="2", face_reference="me.png", qc_identity_threshold=0.3)
    assert Settings.from_dict(s.to_dict()) == s
    parser = argparse.ArgumentParser()
    add_face_flags(parser)
    args = parser.parse_args(["--face-mode", "crop", "--face-subject", "all", "--face-crop-scale", "1.5",
                              "--qc-identity-threshold", "0.5", "--resolution", "256"])
    got = _settings(args)
    assert (got.face_mode, got.face_subject, got.face_crop_scale, got.qc_identity_threshold, got.resolution) == \
        ("crop", "all", 1.5, 0.5, 256)
