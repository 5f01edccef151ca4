"""Shared numbers of the test timeline (tests import these from here, never from conftest,
whose module name other test folders share)."""

START = 86400  # 01:00:00:00 at 24 fps
CLIP_AT, CLIP_IN, CLIP_LEN = START + 10, 3, 12  # V1: shot frames 3..14 at record 86410..86421
SECOND_AT, SECOND_LEN = START + 30, 6
