"""Image sequences: locate one (a folder or printf pattern such as `shot/frame_%06d.exr` -> sorted
[(frame number, path)]) and name files like it (`naming`: the source's file-name pattern without
extension, `shot.%04d`; `edited_name`: `shot_edit.%04d`; `check_name`: a user's `--name`)."""

from __future__ import annotations

import re
from pathlib import Path

from engine.errors import UserError
from engine.io.images import IMAGE_EXTS

_NUMBERED = re.compile(r"^(.*?)(\d+)(\.[^.]+)$")  # prefix, frame number, extension
_PRINTF = re.compile(r"%(\d*)d")
DEFAULT_NAME = "frame_%06d"


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


def naming(frames: list[tuple[int, Path]], pattern: str | None = None) -> str:
    """The printf pattern of a sequence's file names, without extension: the given pattern's, or
    the files' own, zero-padded to the width of their shortest frame number."""
    if pattern is not None:
        return Path(pattern).stem
    prefix = _NUMBERED.match(frames[0][1].name)[1].replace("%", "%%")
    width = min(len(_NUMBERED.match(path.name)[2]) for _, path in frames)
    return f"{prefix}%0{width}d" if width > 1 else f"{prefix}%d"


def edited_name(source: str | None) -> str:
    """The output name pattern for a source named `source`: `_edit` joined to the part before
    the frame number (`shot.%04d` -> `shot_edit.%04d`); `frame_%06d` for videos and stills."""
    if source is None:
        return DEFAULT_NAME
    before, width, after = _PRINTF.split(source, maxsplit=1)
    if not before:
        before = "edit."
    elif before[-1] in "._-":
        before = f"{before[:-1]}_edit{before[-1]}"
    else:
        before += "_edit"
    return f"{before}%{width}d{after}"


def check_name(pattern: str) -> str:
    """A user's file-name pattern with one frame-number field (`%d`, `%04d`), any image
    extension dropped (the output format gives it)."""
    stem = pattern[: -len(Path(pattern).suffix)] if Path(pattern).suffix.lower() in IMAGE_EXTS else pattern
    fields = len(_PRINTF.findall(stem.replace("%%", "")))
    try:
        valid = fields == 1 and "/" not in stem and "\\" not in stem and bool(stem % 1)
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise UserError(f"the name pattern '{pattern}' must be a file name with one frame-number field, "
                        "like shot_edit.%04d.")
    return stem
