"""Face embedders (ArcFace from an ONNX export, tiny) and CLIP (tiny, saved and reloaded by path)."""

from __future__ import annotations

import warnings

import pytest
import torch

from engine.errors import UserError
from engine.training.clip import load_clip, tiny_clip
from engine.training.embedders import IResNet, TinyFaceEmbedder, build_face_embedder, find_arcface, load_arcface_onnx


def _random_iresnet() -> IResNet:
    """A small arcface_torch-layout iresnet (unfused: batch norms after convs) with random
    weights and batch-norm statistics, so folding them into convs is really exercised."""
    torch.manual_seed(0)
    net = IResNet((1, 2, 1, 1), (8, 8, 16, 16), num_features=16, input_size=32, fused=False)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
            elif isinstance(m, torch.nn.PReLU):
                m.weight.uniform_(0.0, 0.5)
    return net.eval()


@pytest.fixture(scope="module")
def arc_onnx(tmp_path_factory):
    """The way insightface made w600k_r50.onnx: torch's TorchScript exporter, eval mode,
    constant folding (batch norms after convs folded into conv weights and biases)."""
    onnx = pytest.importorskip("onnx")  # a dependency (see pyproject); only these tests need it
    net = _random_iresnet()
    path = tmp_path_factory.mktemp("arc") / "tiny_r.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.randn(1, 3, 32, 32),), str(path), dynamo=False, do_constant_folding=True,
                          input_names=["input.1"], output_names=["output"], dynamic_axes={"input.1": {0: "n"}})
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops[:2] == ["Conv", "PRelu"] and ops[-2:] == ["Gemm", "BatchNormalization"]  # really folded
    return net, path


def test_arcface_loads_from_an_onnx_export_and_matches_the_original(arc_onnx):
    net, path = arc_onnx
    arc = load_arcface_onnx(path)
    assert arc.input_size == 32 and [len(s) for s in (arc.net.layer1, arc.net.layer2)] == [1, 2]
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(arc.net(x), net(x), atol=1e-4)
    images = torch.rand(2, 3, 64, 64, requires_grad=True) * 2 - 1
    emb = arc(images)  # crop, resize, embed, normalise
    assert emb.shape == (2, 16) and torch.allclose(emb.norm(dim=-1), torch.ones(2), atol=1e-5)
    emb.sum().backward()  # differentiable w.r.t. the images


def test_arcface_search_and_clear_errors(arc_onnx, tmp_path, monkeypatch):
    _, path = arc_onnx
    monkeypatch.setenv("INSIGHTFACE_HOME", str(tmp_path / "home"))
    assert find_arcface() is None
    with pytest.raises(UserError, match="no ArcFace weights found"):
        build_face_embedder("arcface")
    pack = tmp_path / "home" / "models" / "buffalo_l"
    pack.mkdir(parents=True)
    (pack / "w600k_r50.onnx").write_bytes(path.read_bytes())
    assert find_arcface() == pack / "w600k_r50.onnx"
    assert build_face_embedder("arcface").input_size == 32
    with pytest.raises(UserError, match="does not exist"):
        load_arcface_onnx(tmp_path / "none.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\x00garbage")
    with pytest.raises(UserError, match="ONNX"):
        load_arcface_onnx(tmp_path / "junk.onnx")
    other = tmp_path / "other.onnx"  # an ONNX that is not an iresnet
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 30 * 30, 8)),
                          (torch.randn(1, 3, 32, 32),), str(other), dynamo=False)
    with pytest.raises(UserError, match="iresnet"):
        load_arcface_onnx(other)


def test_tiny_embedder_is_normalised_and_differentiable():
    emb = TinyFaceEmbedder()
    x = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_()
    e = emb(x)
    assert torch.allclose(e.norm(dim=-1), torch.ones(2), atol=1e-5)
    e[:, 0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_tiny_clip_saves_and_loads_by_path(tmp_path):
    clip = tiny_clip()
    clip.model.save_pretrained(tmp_path / "clip")
    clip.tokenizer.save_pretrained(tmp_path / "clip")
    again = load_clip(str(tmp_path / "clip"))
    images = torch.rand(2, 3, 48, 48) * 2 - 1
    prompts = ["a photo of a face", "a photo of a face, wearing glasses"]
    with torch.no_grad():
        assert torch.allclose(clip.image(images), again.image(images), atol=1e-5)
    assert torch.allclose(clip.text(prompts), again.text(prompts), atol=1e-5)
    assert torch.allclose(again.text(prompts).norm(dim=-1), torch.ones(2), atol=1e-5)
    assert not torch.allclose(again.text(prompts)[0], again.text(prompts)[1])


def test_missing_clip_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="could not load CLIP"):
        load_clip("openai/clip-vit-nonexistent-test")
    with pytest.raises(UserError, match="neither a folder nor a hub id"):
        load_clip(str(tmp_path / "no" / "such" / "clip"))


def test_tiny_modules_are_the_same_every_time_and_leave_the_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b = TinyFaceEmbedder(), TinyFaceEmbedder()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    c, d = tiny_clip(), tiny_clip()
    assert all(torch.equal(p, q) for p, q in zip(c.parameters(), d.parameters()))
    assert torch.equal(state, torch.random.get_rng_state())
