"""Prompt checks: the length limit, and the warning when the text encoder cuts a prompt."""

from __future__ import annotations

import pytest

from engine.errors import UserError
from engine.presets import tiny_tokenizer
from engine.prompts import MAX_PROMPT_CHARS, check_prompt, prompt_warnings, truncation_warning
from engine.settings import Settings

# tiny_tokenizer reads one token per character and has CLIP's 77-token window (75 + start/end)
LONG = "add glasses " + " ".join(f"w{i:02d}" for i in range(40))  # 10 + 40 * 3 = 130 tokens


@pytest.mark.parametrize("prompt", ["", "   ", None, 5])
def test_an_empty_or_non_text_prompt_is_refused(prompt):
    with pytest.raises(UserError, match="the prompt is empty"):
        check_prompt(prompt)


def test_a_prompt_over_the_character_limit_is_refused_and_one_at_it_is_kept_stripped():
    assert check_prompt(" " + "x" * MAX_PROMPT_CHARS + " ") == "x" * MAX_PROMPT_CHARS
    with pytest.raises(UserError, match=f"1001 characters long; the limit is {MAX_PROMPT_CHARS}"):
        check_prompt("x" * (MAX_PROMPT_CHARS + 1))


def test_a_prompt_the_encoder_reads_whole_gets_no_warning():
    assert truncation_warning(tiny_tokenizer(), "x" * 75) is None
    assert "is 76 tokens" in truncation_warning(tiny_tokenizer(), "x" * 76)


def test_the_warning_names_the_word_the_prompt_is_cut_after():
    # 10 + 21 * 3 = 73 tokens fit: the cut is after word 23 (w20), two tokens into w21
    assert truncation_warning(tiny_tokenizer(), LONG) == (
        "the prompt is 130 tokens but the text encoder reads 75; it is cut after word 23 ('…w17 w18 w19 w20'), "
        "so 'w21 w22 w23 w24 w25 w26 w27 w28 w29 w30 w31 w32 w33 w34 w35…' is ignored (the first of these "
        "words in part).")


def test_every_prompt_the_edit_encodes_is_checked():
    tokenizer, long_negative = tiny_tokenizer(), "y" * 80
    assert prompt_warnings(tokenizer, "add glasses", Settings()) == []
    named = prompt_warnings(tokenizer, LONG, Settings(source_prompt=LONG, negative_prompt=long_negative))
    assert [w.split(" is ")[0] for w in named] == ["the prompt", "the source_prompt", "the negative_prompt"]
    # guidance 1 never encodes the negative prompt, so it is not reported
    assert prompt_warnings(tokenizer, "add glasses", Settings(guidance_scale=1.0, negative_prompt=long_negative)) == []
