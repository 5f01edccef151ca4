"""Prompt checks: the length limit (before any model loads) and what the text encoder cuts off.

In: a prompt, and for the cut a tokenizer and the edit's `Settings`. Out: the stripped prompt or
a one-sentence UserError (`check_prompt`; the sentence alone from `prompt_problem`); one warning
sentence for every prompt of the edit longer than the text encoder reads, naming the word it is
cut after and what is ignored (`prompt_warnings`).
"""

from __future__ import annotations

from typing import Any

from engine.errors import UserError
from engine.settings import MAX_PROMPT_CHARS, Settings


def prompt_problem(prompt: Any) -> str | None:
    """What is wrong with an edit prompt, as one sentence: empty (or blank), or longer than
    `MAX_PROMPT_CHARS` without its surrounding blanks; None when it is fine. Every layer (CLI,
    editor, protocol, plugins) asks this one function."""
    if not isinstance(prompt, str) or not prompt.strip():
        return "the prompt is empty; say what to change, e.g. 'add glasses'."
    if len(prompt.strip()) > MAX_PROMPT_CHARS:
        return f"the prompt is {len(prompt.strip())} characters long; the limit is {MAX_PROMPT_CHARS}."
    return None


def check_prompt(prompt: Any) -> str:
    """The prompt without surrounding blanks; UserError (`prompt_problem`'s sentence) when it is not usable."""
    problem = prompt_problem(prompt)
    if problem is not None:
        raise UserError(problem)
    return prompt.strip()


def prompt_warnings(tokenizer: Any, prompt: str, settings: Settings) -> list[str]:
    """A sentence for each prompt the edit encodes (the prompt, the source prompt, and the
    negative prompt when guidance is on) that is longer than `tokenizer` lets the encoder read."""
    named = {"prompt": prompt, "source_prompt": settings.source_prompt}
    if settings.guidance_scale > 1:
        named["negative_prompt"] = settings.negative_prompt
    cuts = (truncation_warning(tokenizer, text, name) for name, text in named.items())
    return [warning for warning in cuts if warning]


def truncation_warning(tokenizer: Any, text: str, name: str = "prompt") -> str | None:
    """None when the text encoder reads all of `text`; else a sentence naming its token count,
    the limit, the word it is cut after and the words it ignores (wholly or in part)."""
    room = tokenizer.model_max_length - tokenizer.num_special_tokens_to_add()

    def tokens(part: str) -> int:
        return len(tokenizer(part, add_special_tokens=False).input_ids)

    total = tokens(text)
    if total <= room:
        return None
    words = text.split()
    fits, over = 0, len(words)  # words[:fits] fit, words[:over] do not
    while over - fits > 1:
        middle = (fits + over) // 2
        fits, over = (middle, over) if tokens(" ".join(words[:middle])) <= room else (fits, middle)
    kept = " ".join(words[max(0, fits - 4):fits])
    where = f"after word {fits} ('…{kept}')" if fits else "within its first word"
    partly = " (the first of these words in part)" if tokens(" ".join(words[:fits])) < room else ""
    return (f"the {name} is {total} tokens but the text encoder reads {room}; it is cut {where}, "
            f"so '{_short(' '.join(words[fits:]))}' is ignored{partly}.")


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
