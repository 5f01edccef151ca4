"""Identity metric and the paper's retrieval and temporal metrics on real faces."""

from __future__ import annotations

import numpy as np
import pytest

from engine.faces import samples
from engine.faces.samples import Actor
from engine.metrics.identity import clip_embedding, retrieval

HAVE_DLIB = all(__import__("importlib").util.find_spec(m) for m in ("dlib", "face_recognition_models"))


def _largest(detector, image):
    return max(detector.detect(image, 24), key=lambda f: f.size)


def _photos():
    names = samples.available()
    out = {n: samples.photo(n) for n in names}
    return out


def _friends(detector):
    try:
        group = samples.photo("friends")  # six more people, when insightface's data is installed
    except FileNotFoundError:
        return []
    return [(group, f) for f in detector.detect(group, 40)]


@pytest.fixture(scope="module")
def people(detector):
    """(image, face) of each distinct person available."""
    out = [(im, _largest(detector, im)) for im in _photos().values()]
    return out + _friends(detector)


@pytest.mark.parametrize("name", ["facenet"] + (["dlib"] if HAVE_DLIB else []))
def test_same_person_under_motion_is_well_under_the_threshold_others_well_over(name, detector, facenet, people):
    from engine.metrics.embed import load_embedder

    embedder = facenet if name == "facenet" else load_embedder(name)
    refs = [embedder.embed(im, f) for im, f in people]
    same = []
    for pname, photo in list(_photos().items())[:3]:
        frames, _ = samples.clip([Actor(pname, (900, 540), 240, rotate=12, zoom=0.2, shift=(50, 30), period=4)], 4,
                                 brightness=0.25, blur={1: 11}, jpeg=45, noise=3)
        ref = embedder.embed(photo, _largest(detector, photo))
        for frame in frames:
            same.append(embedder.distance(ref, embedder.embed(frame, _largest(detector, frame))))
    different = [embedder.distance(a, b) for i, a in enumerate(refs) for b in refs[i + 1:]]
    assert len(refs) >= 3
    assert max(same) < 0.6 * embedder.threshold, same
    assert min(different) > 1.3 * embedder.threshold, different


def test_r_at_1_is_one_on_a_gallery_of_distinct_real_faces(detector, facenet, people):
    gallery, queries = [], []
    for k, (image, face) in enumerate(people):
        gallery.append(facenet.embed(image, face))
        # the "edited" clip: the same person under brightness, blur and JPEG, two frames
        import cv2

        frames = []
        for gain, q in ((1.2, 50), (0.85, 70)):
            x = np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)
            x = cv2.GaussianBlur(x, (0, 0), 1.2)
            x = cv2.imdecode(cv2.imencode(".jpg", x, [cv2.IMWRITE_JPEG_QUALITY, q])[1], cv2.IMREAD_UNCHANGED)
            frames.append(facenet.embed(x, face))
        queries.append(clip_embedding(np.array(frames)))
    r = retrieval(np.array(queries), np.array(gallery), list(range(len(gallery))))
    assert len(gallery) >= 3
    assert r["r1"] == 1.0 and r["mrr"] == 1.0


def test_retrieval_ranks():
    g = np.eye(4)
    q = np.array([[1, 0.1, 0, 0], [0.9, 1, 0, 0], [0, 0, 0.2, 1]])
    r = retrieval(q, g, [0, 0, 2])
    assert r["ranks"] == [1, 2, 2]
    assert r["r1"] == pytest.approx(1 / 3) and r["mrr"] == pytest.approx((1 + 0.5 + 0.5) / 3)


def test_warp_error_sees_flicker_but_not_motion():
    from engine.metrics.temporal import warp_error

    frames, _ = samples.clip([Actor("astronaut", (200, 160), 120, shift=(12, 6), period=8)], 8, size=(320, 400))
    still = [frames[0]] * 8
    assert warp_error(still) < 1e-6
    moving = warp_error(frames)
    rng = np.random.default_rng(0)
    flicker = [np.clip(f * rng.uniform(0.8, 1.2), 0, 255).astype(np.uint8) for f in frames]
    assert moving < 0.02
    assert warp_error(flicker) > 3 * moving
    assert warp_error(frames, method="farneback") < 0.03
