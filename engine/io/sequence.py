"""Locate an image sequence: a folder or printf pattern (`shot/frame_%06d.exr`) -> sorted [(frame number, path)]."""

from __future__ import annotations

import re
from pathlib import Path

from engine.errors import UserError
from engine.io.images import IMAGE_EXTS

_NUMBERED = re.compile(r"^(.*?)(\d+)(\.[^.]+)$")  # prefix, frame number, extension
_PRINTF = re.compile(r"%(\d*)d")


def is_pattern(source: str) -> bool:
    """True when the file name part of `source` holds a printf field such as %06d."""
    return _PRINTF.search(Path(source).name) is not None


def from_folder(folder: Path) -> list[tuple[int, Path]]:
    """The one numbered image sequence in `folder`; unnumbered and non-image files are ignored."""
    images = [p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_EXTS and not p.name.startswith(".")]
    if not images:
        raise UserError(f"The folder {folder} holds no images ({', '.join(IMAGE_EXTS)}).")
    groups: dict[tuple[str, str], list[tuple[int, Path]]] = {}
    for path in images:
        match = _NUMBERED.match(path.name)
        if match and path.is_file():
            groups.setdefault((match[1], match[3].lower()), []).append((int(match[2]), path))
    if not groups:
        raise UserError(f"The images in {folder} have no frame numbers in their names (like frame_001001.png).")
    if len(groups) > 1:
        found = ", ".join(f"{prefix}#{ext}" for prefix, ext in sorted(groups))
        raise UserError(
            f"The folder {folder} holds several image sequences ({found}); pass a pattern like {folder / 'frame_%06d.png'}."
        )
    return _sorted_unique(next(iter(groups.values())), str(folder))


def from_pattern(pattern: str) -> list[tuple[int, Path]]:
    """Files matching a printf pattern; %06d matches 6 or more digits, %d any number of digits."""
    path = Path(pattern)
    fields = _PRINTF.findall(path.name)
    if len(fields) != 1:
        raise UserError(f"The pattern {pattern} must hold exactly one frame-number field such as %06d.")
    if not path.parent.is_dir():
        raise UserError(f"The folder {path.parent} does not exist.")
    if path.suffix.lower() not in IMAGE_EXTS:
        raise UserError(f"{path.name} has an unsupported extension; use one of {', '.join(IMAGE_EXTS)}.")
    before, after = _PRINTF.split(path.name, maxsplit=1)[::2]
    width = int(fields[0] or 1)
    regex = re.compile(f"{re.escape(before)}(\\d{{{width},}}){re.escape(after)}")
    found = [(int(m[1]), p) for p in path.parent.iterdir() if (m := regex.fullmatch(p.name)) and p.is_file()]
    if not found:
        raise UserError(f"No files match the pattern {pattern}.")
    return _sorted_unique(found, pattern)


def _sorted_unique(frames: list[tuple[int, Path]], source: str) -> list[tuple[int, Path]]:
    frames = sorted(frames)
    for (a, path_a), (b, path_b) in zip(frames, frames[1:]):
        if a == b:
            raise UserError(f"Frame {a} appears twice in {source} ({path_a.name} and {path_b.name}).")
    return frames
