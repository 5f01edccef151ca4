"""A cancel lands inside a UNet call (at the next attention layer), not after the whole call;
the hooks are installed once per edit (not per UNet call), only when there is a cancel check,
and removed afterwards, so a later edit runs normally."""

import pytest

from engine.cancel_hooks import CancelHooks
from engine.meter import Meter

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


def test_cancel_hooks_are_installed_once_per_edit_and_only_with_a_cancel_check(tiny_editor, clip16, monkeypatch):
    applied, calls = [], []
    apply, unet_call = CancelHooks.apply, Meter.unet
    monkeypatch.setattr(CancelHooks, "apply", lambda self: applied.append(self.unet) or apply(self))
    monkeypatch.setattr(Meter, "unet", lambda self, *a: calls.append(1) or unet_call(self, *a))
    tiny_editor.edit_crops(clip16[:2], "add glasses", Settings(steps=3), cancel=lambda: False)
    unets = tiny_editor.models.unets()
    assert len(calls) >= 2 * 3  # inversion and edit, 3 steps each ...
    assert sorted(map(id, applied)) == sorted(map(id, unets))  # ... one installation per UNet
    applied.clear()
    tiny_editor.edit_crops(clip16[:2], "add glasses", Settings(steps=3))
    assert applied == []
