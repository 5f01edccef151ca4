"""Paste-back: edited crops warped back into the full-resolution frames.

In: the original frames, the edited crops (as `FacePlan.crops` lists them), the plan and
`Settings`. Out: new frames, same shape, layout, dtype and range as the input.

- Crop mode: per crop a feathered mask (ellipse, landmark hull or box, in crop coordinates,
  `face_mask`, `face_mask_dilate`, `face_feather`) is warped back with the exact inverse of
  the crop's affine map. Pixels where the mask is zero are never written, so they stay
  bit-identical; frames without a crop are returned unchanged.
- `face_paste=delta` (default) pastes the edit as a change: frame + warp(edited − crop). An
  unedited crop gives back the frame exactly, and detail finer than the model resolution
  (a 4K face seen at 512²) survives where the edit did not touch it. `replace` pastes the
  edited pixels themselves.
- `face_color_match` (0..1) shifts the pasted colours so their mean in the seam band (the
  mask's feather ramp) matches the frame's.
- Full mode: the edit is resized back to the frame (as a change, or replacing it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import cv2
import numpy as np

from engine.errors import UserError
from engine.faces.crop import antialias, extract, extract_full, frame_to_crop, full_size, region
from engine.faces.image import layout_of, to_float_rgb, write_back

if TYPE_CHECKING:
    from engine.faces.plan import FacePlan
    from engine.settings import Settings

MASK_FLOOR = 1.0 / 2048  # mask values below this count as outside


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def crop_mask(res: int, kind: str, feather: float, dilate: float, kps: np.ndarray | None = None,
              dense: np.ndarray | None = None) -> np.ndarray:
    """res×res float32 mask in crop coordinates: 1 inside, a smooth ramp `feather`×res wide
    inside the shape's edge, exactly 0 outside it. Landmarks (crop coordinates) shape the hull."""
    grow = dilate * res
    binary = np.zeros((res, res), np.uint8)
    c = (res - 1) / 2.0
    if kind == "ellipse":
        axes = (int(round(0.36 * res + grow)), int(round(0.44 * res + grow)))
        cv2.ellipse(binary, (int(round(c)), int(round(c))), axes, 0, 0, 360, 1, -1)
    elif kind == "box":
        g = int(round(0.04 * res - grow))
        binary[max(g, 0):res - max(g, 0), max(g, 0):res - max(g, 0)] = 1
    elif kind == "hull":
        if kps is None:
            raise UserError("the hull mask needs landmarks.")
        binary = _hull(res, kps, dense, grow)
    else:
        raise UserError(f"unknown face_mask '{kind}'; choose ellipse, hull or box.")
    binary[[0, -1], :] = 0  # the ramp must reach zero inside the crop
    binary[:, [0, -1]] = 0
    dist = cv2.distanceTransform(binary, cv2.DIST_L2, 5)
    width = max(feather * res, 1.0)
    return _smoothstep(dist / width).astype(np.float32)


def _hull(res: int, kps: np.ndarray, dense: np.ndarray | None, grow: float) -> np.ndarray:
    """Convex hull of the landmarks, extended over the forehead and chin, grown by `grow` px."""
    eyes = (kps[0] + kps[1]) / 2
    mouth = (kps[3] + kps[4]) / 2
    down = mouth - eyes
    across = kps[1] - kps[0]
    pts = [kps, dense] if dense is not None else [kps]
    # forehead and hairline above the eyes, chin below the mouth, cheeks beside the eyes
    extra = np.array([eyes - 1.3 * down, kps[0] - 1.0 * down - 0.3 * across, kps[1] - 1.0 * down + 0.3 * across,
                      kps[0] - 0.45 * across, kps[1] + 0.45 * across, mouth + 0.7 * down,
                      kps[3] + 0.35 * down - 0.25 * across, kps[4] + 0.35 * down + 0.25 * across])
    pts.append(extra)
    hull = cv2.convexHull(np.concatenate(pts).astype(np.float32)).astype(np.int32)
    binary = np.zeros((res, res), np.uint8)
    cv2.fillConvexPoly(binary, hull, 1)
    if grow > 0:
        k = int(round(2 * grow)) | 1
        binary = cv2.dilate(binary, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    elif grow < 0:
        k = int(round(-2 * grow)) | 1
        binary = cv2.erode(binary, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    return binary


def _to_crop(points: np.ndarray, box: np.ndarray, res: int) -> np.ndarray:
    m = frame_to_crop(box, res)
    return points @ m[:, :2].T + m[:, 2]


def paste(original_frames: Sequence[np.ndarray], edited_crops: Sequence[np.ndarray], plan: "FacePlan",
          settings: "Settings | None" = None) -> list[np.ndarray]:
    """See the module doc. `edited_crops` must match `plan.crops` in number and size."""
    from engine.settings import Settings

    settings = settings or Settings()
    if len(edited_crops) != len(plan.crops):
        raise UserError(f"paste needs {len(plan.crops)} edited crops; got {len(edited_crops)}.")
    if len(original_frames) != plan.n_frames:
        raise UserError(f"paste needs the {plan.n_frames} original frames; got {len(original_frames)}.")
    out = [np.array(f, copy=True) if isinstance(f, np.ndarray) else f for f in original_frames]
    masks: dict = {}
    for k, i in enumerate(plan.crop_frames):
        _paste_one(out[i], np.asarray(original_frames[i]), k, edited_crops[k], plan, settings, masks)
    return out


def paste_crop(original: np.ndarray, k: int, edited: np.ndarray, plan: "FacePlan",
               settings: "Settings") -> np.ndarray:
    """Crop `k` of the plan, edited, pasted into a copy of its original frame (a preview of one frame)."""
    out = np.array(original, copy=True)
    _paste_one(out, np.asarray(original), k, edited, plan, settings, {})
    return out


def _paste_one(frame: np.ndarray, original: np.ndarray, k: int, edited: np.ndarray, plan: "FacePlan",
               settings: "Settings", masks: dict) -> None:
    """Paste edited crop `k` into `frame` (a copy of `original`); `masks` caches the shared ellipse/box mask."""
    edited = np.asarray(edited, np.float32)
    if plan.mode == "full":
        _paste_full(frame, edited, plan, settings)
        return
    res, box, face = plan.size[0], plan.crop_boxes[k], plan.crop_faces[k]
    if settings.face_mask == "hull":
        mask = crop_mask(res, "hull", settings.face_feather, settings.face_mask_dilate, _to_crop(face.kps, box, res),
                         None if face.dense is None else _to_crop(face.dense, box, res))
    else:
        if "shared" not in masks:
            masks["shared"] = crop_mask(res, settings.face_mask, settings.face_feather, settings.face_mask_dilate)
        mask = masks["shared"]
    _paste_crop(frame, original, edited, box, mask, settings)


def _paste_crop(frame: np.ndarray, original: np.ndarray, edited: np.ndarray, box: np.ndarray,
                mask: np.ndarray, settings: "Settings") -> None:
    res = mask.shape[0]
    if edited.shape[:2] != (res, res):
        raise UserError(f"edited crops must be {res}×{res}; got {edited.shape[1]}×{edited.shape[0]}.")
    reg = region(box, frame.shape)
    rows, cols = np.nonzero(mask.max(axis=1) >= MASK_FLOOR)[0], np.nonzero(mask.max(axis=0) >= MASK_FLOOR)[0]
    if reg is None or not len(rows):
        return
    # shrink the region to the mask's support (mapped from crop to frame pixels)
    k, c = box[2] / res, (res - 1) / 2.0
    x0 = max(reg[0], int(np.floor(box[0] + (cols[0] - c) * k)) - 2)
    x1 = min(reg[2], int(np.ceil(box[0] + (cols[-1] - c) * k)) + 3)
    y0 = max(reg[1], int(np.floor(box[1] + (rows[0] - c) * k)) - 2)
    y1 = min(reg[3], int(np.ceil(box[1] + (rows[-1] - c) * k)) + 3)
    if x1 <= x0 or y1 <= y0:
        return
    size = (x1 - x0, y1 - y0)
    m = frame_to_crop(box, res, x0, y0)  # region -> crop, used as an inverse map
    flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
    shrink = box[2] / res  # crop pixels -> frame pixels
    layout = layout_of(original)
    base = to_float_rgb(frame[y0:y1, x0:x1], layout)
    if settings.face_paste == "delta":
        change = edited[:, :, :3] - extract(original, box, res, layout)
        pasted = base + cv2.warpAffine(antialias(change, shrink), m, size, flags=flags, borderMode=cv2.BORDER_CONSTANT)
    else:
        pasted = cv2.warpAffine(antialias(edited[:, :, :3], shrink), m, size, flags=flags,
                                borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask, m, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    inside = alpha >= MASK_FLOOR
    if not inside.any():
        return
    if settings.face_color_match > 0:
        band = inside & (alpha < 0.5)
        if band.sum() >= 16:
            shift = base[band].mean(axis=0) - pasted[band].mean(axis=0)
            pasted = pasted + settings.face_color_match * shift
    a = alpha[:, :, None]
    blended = base + a * (pasted - base)
    write_back(frame, blended, inside, y0, x0)


def _paste_full(frame: np.ndarray, edited: np.ndarray, plan: "FacePlan", settings: "Settings") -> None:
    h, w = frame.shape[:2]
    (sh, sw), _ = full_size(h, w, plan.size_full_res, plan.full_multiple)
    layout = layout_of(frame)
    edited = edited[:sh, :sw, :3]
    grow = cv2.INTER_CUBIC if h > sh else cv2.INTER_AREA
    if settings.face_paste == "delta":
        change = edited - extract_full(frame, plan.size_full_res, layout, plan.full_multiple)[:sh, :sw]
        result = to_float_rgb(frame, layout) + cv2.resize(change, (w, h), interpolation=grow)
    else:
        result = cv2.resize(edited, (w, h), interpolation=grow)
    write_back(frame, result, np.ones((h, w), bool), 0, 0)


__all__ = ["paste", "paste_crop", "crop_mask"]
