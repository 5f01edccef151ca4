"""`Meter` on CUDA times model calls with CUDA events: no host sync per UNet call."""

from __future__ import annotations

import torch

from engine.meter import Meter


class FakeEvent:
    def __init__(self, enable_timing: bool = False):
        self.recorded = False

    def record(self) -> None:
        self.recorded = True

    def synchronize(self) -> None:
        pass

    def elapsed_time(self, end: "FakeEvent") -> float:
        assert self.recorded and end.recorded
        return 25.0  # milliseconds


class FakeUNet(torch.nn.Module):
    dtype = torch.float32

    def forward(self, latents, t, encoder_hidden_states=None, return_dict=False):
        return (latents * 2,)


def test_timing_unet_calls_on_cuda_does_not_synchronise_the_host(monkeypatch):
    syncs = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: syncs.append(device))
    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: 123)
    meter = Meter(torch.device("cuda"), 8)
    x, emb = torch.ones(2, 4, 8, 8), torch.zeros(2, 77, 32)
    with meter.stage("edit"):
        assert len(syncs) == 1  # the stage's start
        for step in range(4):
            meter.unet("keyframes", FakeUNet(), x, torch.tensor(1), emb, step)
        assert len(syncs) == 1  # none per call: the CPU may queue the next while the GPU runs this one
    assert len(syncs) == 2  # and the stage's end
    stats = meter.stats(2)
    assert stats["seconds_in"]["unet"] == 4 * 0.025 and stats["unet_evals"]["keyframes"] == 8
