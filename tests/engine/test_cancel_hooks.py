"""A cancel lands inside a UNet call (at the next attention layer), not after the whole call;
the hooks are removed afterwards, so a later edit runs normally."""

import pytest

from engine.errors import Cancelled
from engine.settings import Settings


def test_cancel_lands_within_one_attention_layer(tiny_editor, clip16):
    checks, steps = [], []

    def cancel() -> bool:
        checks.append(1)
        return len(checks) >= 3  # true at the third check: the third attention layer of the first call

    with pytest.raises(Cancelled):
        tiny_editor.edit_crops(clip16[:2], "add glasses", Settings(steps=2),
                               progress=lambda *a: steps.append(a), cancel=cancel)
    assert len(checks) == 3 and steps == []  # no UNet call finished
    assert not any(m._forward_pre_hooks for unet in tiny_editor.models.unets() for m in unet.modules())
    done = tiny_editor.edit_crops(clip16[:2], "add glasses", Settings(steps=2), cancel=lambda: False)
    assert len(done.frames) == 2
