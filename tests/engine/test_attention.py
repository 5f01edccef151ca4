"""The attention processors against explicit reference formulations, on a real diffusers
`Attention` module; pass specs are frozen and reach the hooks for one UNet call only."""

import dataclasses

import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from engine.attention import FeatureHooks, KeyframeSpec, PropagateSpec, SelfAttentionProcessor, SourceSpec
from engine.correspond import gather_propagated, nearest_tokens
from engine.errors import UserError
from engine.presets import build_preset

S, D, HEADS = 12, 32, 4


@pytest.fixture
def attn():
    torch.manual_seed(0)
    module = Attention(query_dim=D, heads=HEADS, dim_head=D // HEADS).eval()
    return module


LAYER = "up_blocks.2.attentions.0.transformer_blocks.0.attn1"


def _run(attn, spec, x, hooks=None):
    """`attn` on `x` under `spec`; returns (output, the call's sink)."""
    hooks = hooks or FeatureHooks()
    attn.set_processor(SelfAttentionProcessor(LAYER + ".processor", hooks.current))
    with torch.no_grad(), hooks.run(spec) as sink:
        return attn(x), sink


def _reference_extended(attn, x, branches, keys_of):
    """TokenFlow's formulation: K/V of the key keyframes concatenated and *repeated* per
    keyframe, attention per keyframe with explicit softmax."""
    c = branches
    q, k, v = (p(x).view(c, -1, S, D) for p in (attn.to_q, attn.to_k, attn.to_v))
    n = q.shape[1]
    out = torch.empty_like(q)
    for i in range(n):
        kk = k[:, keys_of(i)].reshape(c, -1, D)
        vv = v[:, keys_of(i)].reshape(c, -1, D)
        qh = q[:, i].view(c, S, HEADS, -1).transpose(1, 2)
        kh = kk.view(c, -1, HEADS, D // HEADS).transpose(1, 2)
        vh = vv.view(c, -1, HEADS, D // HEADS).transpose(1, 2)
        w = (qh @ kh.transpose(-1, -2) / (D // HEADS) ** 0.5).softmax(-1)
        out[:, i] = (w @ vh).transpose(1, 2).reshape(c, S, D)
    return attn.to_out[0](out.reshape(c * n, S, D))


def test_extended_attention_over_one_keyframe_is_plain_self_attention(attn):
    x = torch.randn(2, S, D)  # 2 guidance branches × 1 keyframe
    ours, _ = _run(attn, KeyframeSpec((((0,), (0,)),), branches=2), x)
    attn.set_processor(AttnProcessor2_0())
    with torch.no_grad():
        plain = attn(x)
    torch.testing.assert_close(ours, plain, rtol=1e-5, atol=1e-6)


def test_single_call_equals_concatenate_and_repeat(attn):
    k = 5
    x = torch.randn(2 * k, S, D)
    everyone = tuple(range(k))
    ours, sink = _run(attn, KeyframeSpec(((everyone, everyone),), branches=2), x)
    with torch.no_grad():
        ref = _reference_extended(attn, x, 2, lambda i: list(everyone))
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)
    assert sink.kf_out[LAYER].shape == (2, k, S, D)


def test_windowed_groups_attend_only_to_their_keys(attn):
    groups = (((0, 1), (0, 1, 2, 5)), ((2, 3), (1, 2, 3, 4)), ((4, 5), (3, 4, 5, 0)))
    keys = {q: sorted(kk) for qs, kk in groups for q in qs}
    x = torch.randn(6, S, D)
    ours, _ = _run(attn, KeyframeSpec(groups), x)
    with torch.no_grad():
        ref = _reference_extended(attn, x, 1, lambda i: keys[i])
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)


def test_injected_queries_and_keys_replace_the_models_own(attn):
    x = torch.randn(2, S, D)
    src = torch.randn(1, S, D)
    with torch.no_grad():
        q_src, k_src = attn.to_q(src), attn.to_k(src)
    ours, _ = _run(attn, KeyframeSpec((((0,), (0,)),), branches=2, inject_qk={LAYER: (q_src, k_src)}), x)
    with torch.no_grad():
        v = attn.to_v(x)
        w = (q_src.view(1, S, HEADS, -1).transpose(1, 2) @ k_src.view(1, S, HEADS, -1).transpose(1, 2).transpose(-1, -2)
             / (D // HEADS) ** 0.5).softmax(-1)
        ref = attn.to_out[0]((w @ v.view(2, S, HEADS, -1).transpose(1, 2)).transpose(1, 2).reshape(2, S, D))
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)


def test_a_frame_identical_to_a_keyframe_gathers_exactly_its_tokens():
    torch.manual_seed(1)
    kf_tokens = torch.randn(3, S, D)
    frame = kf_tokens[1:2].clone()
    which = torch.tensor([1])
    idx = nearest_tokens(frame, kf_tokens, which)
    assert torch.equal(idx[0], torch.arange(S, dtype=torch.int32))
    kf_out = torch.randn(2, 3, S, D)
    got = gather_propagated(kf_out, which, which, idx, idx, torch.tensor([0.3]))
    assert torch.equal(got[:, 0], kf_out[:, 1])


def test_propagation_blends_past_and_future_by_distance():
    kf_out = torch.randn(1, 2, S, D)
    idx = torch.arange(S, dtype=torch.int32)[None]
    got = gather_propagated(kf_out, torch.tensor([0]), torch.tensor([1]), idx, idx, torch.tensor([0.25]))
    torch.testing.assert_close(got[0, 0], 0.25 * kf_out[0, 0] + 0.75 * kf_out[0, 1])


def test_propagate_pass_replaces_attention_output(attn):
    kf_out = torch.randn(2, 2, S, D)
    perm = torch.randperm(S).to(torch.int32)[None]
    spec = PropagateSpec({LAYER: kf_out}, {LAYER: (perm, perm)}, past=torch.tensor([0]), future=torch.tensor([1]),
                         w_past=torch.tensor([1.0]), branches=2)
    out, _ = _run(attn, spec, torch.randn(2, S, D))
    torch.testing.assert_close(out.view(2, S, D), kf_out[:, 0, perm[0].long()])


def test_hooks_refuse_attention_they_do_not_implement():
    unet = build_preset("tiny")["unet"]
    unet.get_submodule("down_blocks.0.attentions.0.transformer_blocks.0.attn1").residual_connection = True
    before = dict(unet.attn_processors)
    with pytest.raises(UserError, match="residual connection"):
        FeatureHooks(unet).apply()
    assert all(unet.attn_processors[k] is before[k] for k in before)


def test_a_group_in_its_own_call_attends_to_keys_kept_from_earlier_calls(attn):
    groups = (((0, 1), (0, 1)), ((2, 3), (0, 1, 2, 3)), ((4,), (2, 3, 4)))
    x = torch.randn(2 * 5, S, D)  # 2 branches × 5 keyframes
    joint = _run(attn, KeyframeSpec(groups, branches=2), x)[0].view(2, 5, S, D)
    bank: dict = {}
    xs = x.view(2, 5, S, D)
    for g, (queries, _) in enumerate(groups):
        later = {k for _, keys in groups[g + 1:] for k in keys}
        spec = KeyframeSpec((groups[g],), queries, 2, frozenset(set(queries) & later), bank)
        out, sink = _run(attn, spec, xs[:, list(queries)].reshape(-1, S, D))
        torch.testing.assert_close(out.view(2, len(queries), S, D), joint[:, list(queries)], rtol=1e-5, atol=1e-6)
        for layer, kept in sink.kv.items():
            bank.setdefault(layer, {}).update(kept)
    assert sorted(bank[LAYER]) == [0, 1, 2, 3]  # 4 is no later group's key


def test_a_pass_spec_is_frozen():
    spec = KeyframeSpec((((0,), (0,)),), branches=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.branches = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        SourceSpec(tokens=True).tokens = False


def test_a_processor_called_outside_a_run_raises(attn):
    hooks = FeatureHooks()
    attn.set_processor(SelfAttentionProcessor(LAYER + ".processor", hooks.current))
    with pytest.raises(RuntimeError, match="outside FeatureHooks.run"):
        attn(torch.randn(1, S, D))
    _run(attn, SourceSpec(), torch.randn(1, S, D), hooks)
    with pytest.raises(RuntimeError, match="outside FeatureHooks.run"):  # the run is over
        attn(torch.randn(1, S, D))


def test_runs_do_not_nest():
    hooks = FeatureHooks()
    with hooks.run(SourceSpec()), pytest.raises(RuntimeError, match="do not nest"):
        with hooks.run(SourceSpec()):
            pass


def test_what_one_call_captured_is_not_visible_in_the_next(attn):
    hooks = FeatureHooks()
    x = torch.randn(2, S, D)
    _, first = _run(attn, SourceSpec(tokens=True, qk=True), x, hooks)
    assert torch.equal(first.tokens[LAYER], x) and LAYER in first.qk
    _, keyframes = _run(attn, KeyframeSpec((((0, 1), (0, 1)),), keep=frozenset({0})), x, hooks)
    assert keyframes.tokens == {} and keyframes.qk == {} and set(keyframes.kf_out) == {LAYER}
    assert set(keyframes.kv[LAYER]) == {0}
    _, source = _run(attn, SourceSpec(), x, hooks)
    assert (source.tokens, source.qk, source.conv, source.kf_out, source.kv) == ({}, {}, None, {}, {})


def test_a_hooked_unet_called_outside_a_run_raises_and_is_restored_after():
    unet = build_preset("tiny")["unet"].eval()
    before = dict(unet.attn_processors)
    x, t, emb = torch.randn(1, 4, 8, 8), torch.tensor(10), torch.randn(1, 77, unet.config.cross_attention_dim)
    with torch.no_grad():
        plain = unet(x, t, encoder_hidden_states=emb).sample
        with FeatureHooks(unet) as hooks:
            with pytest.raises(RuntimeError, match="outside FeatureHooks.run"):
                unet(x, t, encoder_hidden_states=emb)
            with hooks.run(SourceSpec(conv=True)) as sink:
                hooked = unet(x, t, encoder_hidden_states=emb).sample
        assert sink.conv is not None and sink.tokens == {}
        torch.testing.assert_close(hooked, plain, rtol=1e-4, atol=1e-5)  # a source pass is plain ε1
        assert all(unet.attn_processors[k] is before[k] for k in before)
        torch.testing.assert_close(unet(x, t, encoder_hidden_states=emb).sample, plain, rtol=0, atol=0)
