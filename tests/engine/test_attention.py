"""The attention processors against explicit reference formulations, on a real diffusers
`Attention` module."""

import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from engine.attention import PassState, SelfAttentionProcessor
from engine.correspond import gather_propagated, nearest_tokens

S, D, HEADS = 12, 32, 4


@pytest.fixture
def attn():
    torch.manual_seed(0)
    module = Attention(query_dim=D, heads=HEADS, dim_head=D // HEADS).eval()
    return module


def _run(attn, state, x):
    attn.set_processor(SelfAttentionProcessor("up_blocks.2.attentions.0.transformer_blocks.0.attn1.processor", state))
    with torch.no_grad():
        return attn(x)


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
    state = PassState(mode="keyframes", branches=2, groups=(((0,), (0,)),))
    ours = _run(attn, state, x)
    attn.set_processor(AttnProcessor2_0())
    with torch.no_grad():
        plain = attn(x)
    torch.testing.assert_close(ours, plain, rtol=1e-5, atol=1e-6)


def test_single_call_equals_concatenate_and_repeat(attn):
    k = 5
    x = torch.randn(2 * k, S, D)
    everyone = tuple(range(k))
    state = PassState(mode="keyframes", branches=2, groups=((everyone, everyone),))
    ours = _run(attn, state, x)
    with torch.no_grad():
        ref = _reference_extended(attn, x, 2, lambda i: list(everyone))
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)
    assert state.kf_out["up_blocks.2.attentions.0.transformer_blocks.0.attn1"].shape == (2, k, S, D)


def test_windowed_groups_attend_only_to_their_keys(attn):
    groups = (((0, 1), (0, 1, 2, 5)), ((2, 3), (1, 2, 3, 4)), ((4, 5), (3, 4, 5, 0)))
    keys = {q: sorted(kk) for qs, kk in groups for q in qs}
    x = torch.randn(6, S, D)
    ours = _run(attn, PassState(mode="keyframes", branches=1, groups=groups), x)
    with torch.no_grad():
        ref = _reference_extended(attn, x, 1, lambda i: keys[i])
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)


def test_injected_queries_and_keys_replace_the_models_own(attn):
    x = torch.randn(2, S, D)
    src = torch.randn(1, S, D)
    with torch.no_grad():
        q_src, k_src = attn.to_q(src), attn.to_k(src)
    layer = "up_blocks.2.attentions.0.transformer_blocks.0.attn1"
    state = PassState(mode="keyframes", branches=2, groups=(((0,), (0,)),), inject_qk={layer: (q_src, k_src)})
    ours = _run(attn, state, x)
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
    layer = "up_blocks.2.attentions.0.transformer_blocks.0.attn1"
    kf_out = torch.randn(2, 2, S, D)
    perm = torch.randperm(S).to(torch.int32)[None]
    state = PassState(mode="propagate", branches=2, kf_out={layer: kf_out}, nn={layer: (perm, perm)},
                      past=torch.tensor([0]), future=torch.tensor([1]), w_past=torch.tensor([1.0]))
    out = _run(attn, state, torch.randn(2, S, D))
    torch.testing.assert_close(out.view(2, S, D), kf_out[:, 0, perm[0].long()])


def test_hooks_refuse_attention_they_do_not_implement():
    from engine.attention import FeatureHooks
    from engine.errors import UserError
    from engine.presets import build_preset

    unet = build_preset("tiny")["unet"]
    unet.get_submodule("down_blocks.0.attentions.0.transformer_blocks.0.attn1").residual_connection = True
    before = dict(unet.attn_processors)
    with pytest.raises(UserError, match="residual connection"):
        FeatureHooks(unet, PassState()).apply()
    assert all(unet.attn_processors[k] is before[k] for k in before)


def test_a_group_in_its_own_call_attends_to_keys_kept_from_earlier_calls(attn):
    groups = (((0, 1), (0, 1)), ((2, 3), (0, 1, 2, 3)), ((4,), (2, 3, 4)))
    x = torch.randn(2 * 5, S, D)  # 2 branches × 5 keyframes
    joint = _run(attn, PassState(mode="keyframes", branches=2, groups=groups), x).view(2, 5, S, D)
    state = PassState(mode="keyframes", branches=2)
    xs = x.view(2, 5, S, D)
    for g, (queries, _) in enumerate(groups):
        later = {k for _, keys in groups[g + 1:] for k in keys}
        state.call, state.groups, state.keep = queries, (groups[g],), frozenset(set(queries) & later)
        out = _run(attn, state, xs[:, list(queries)].reshape(-1, S, D)).view(2, len(queries), S, D)
        torch.testing.assert_close(out, joint[:, list(queries)], rtol=1e-5, atol=1e-6)
    layer = "up_blocks.2.attentions.0.transformer_blocks.0.attn1"
    assert sorted(state.kv_bank[layer]) == [0, 1, 2, 3]  # 4 is no later group's key
