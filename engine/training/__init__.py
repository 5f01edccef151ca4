"""Fine-tuning of the paper's two UNets (Sec. 4): ε1 for identity-preserving reconstruction
(Eq. 5) and ε2 for localized, prompt-faithful edits (Eq. 6), as LoRA adapters (or full
UNets) that `engine.models.load_models(identity=, direction=)` loads.

Modules: `config` (TrainConfig), `data` (face folder, captions, edit list, resumable batch
order), `embedders` (differentiable face embedders: ArcFace iresnet from insightface ONNX
weights, a tiny one for tests), `clip` (CLIP f_I/f_T from transformers), `losses` (the
objectives), `loop` (the accelerate loop), `checkpoints`, `outputs` (logs, sample grids,
model card), `cli` (`ipfacediff train identity|direction`), `samples` (a small face set
from packaged photos). Importing the package is light; torch & co. load on first use.
"""

from engine.training.config import TrainConfig


def train(*args, **kwargs):
    """Fine-tune ε1 or ε2 (see `engine.training.loop.train`)."""
    from engine.training.loop import train as _train

    return _train(*args, **kwargs)


__all__ = ["TrainConfig", "train"]
