"""Differentiable face embedders for the identity loss (Eq. 5).

Interface (`FaceEmbedder`, a torch module): images [B, 3, H, W] RGB in [-1, 1] (SD's
range) -> [B, D] L2-normalised embeddings; gradients flow to the images, its own weights
are frozen by the trainer. Each embedder crops and resizes the face its own way.

- `ArcFace`: insightface's iresnet (arcface_torch) in torch. Its weights are read from an
  insightface ONNX file (e.g. the `buffalo_l` pack's `w600k_r50.onnx`, or any arcface_torch
  iresnet export) with the `onnx` package: the graph's Conv (batch-norm folded in by the
  export), PRelu, BatchNormalization and Gemm weights are taken in execution order, the
  depth and widths inferred from them. Input: the pSp-style FFHQ/CelebA-HQ face box of the
  (aligned, whole-head) training image, resized to 112², RGB in [-1, 1] — ArcFace's own
  normalisation ((x/255 − 0.5)/0.5).
- `TinyFaceEmbedder`: a seeded random 2-conv net, for tests only.
Anything else (e.g. another recogniser in torch) can stand in by subclassing `FaceEmbedder`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import UserError

# Face box (top, bottom, left, right as fractions of the image) of an FFHQ/CelebA-HQ-aligned
# crop: pSp's ID loss crops [35:223, 32:220] of 256² before ArcFace.
FFHQ_FACE_BOX = (35 / 256, 223 / 256, 32 / 256, 220 / 256)
ARCFACE_FILES = ("w600k_r50.onnx", "glintr100.onnx", "w600k_mbf.onnx")


class FaceEmbedder(nn.Module):
    """Base: crop `box` (fractions) of the image, resize to `input_size`², `features`, L2-normalise."""

    input_size: int = 112
    box: tuple[float, float, float, float] | None = FFHQ_FACE_BOX
    name: str = "face"

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float()  # resampling in fp32 (CPU has no bf16 antialiased resize)
        if self.box is not None:
            h, w = x.shape[-2:]
            t, b, l, r = self.box
            x = x[..., round(t * h):max(round(b * h), round(t * h) + 1), round(l * w):max(round(r * w), round(l * w) + 1)]
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > self.input_size)
        return F.normalize(self.features(x).float(), dim=-1)


class TinyFaceEmbedder(FaceEmbedder):
    """Random (seeded) small conv net: fast, differentiable, meaningless — for tests."""

    name = "tiny"

    def __init__(self, dim: int = 32, input_size: int = 32, seed: int = 0):
        super().__init__()
        self.input_size = input_size
        with torch.random.fork_rng(devices=[]):  # the same weights every time; the global RNG untouched
            torch.manual_seed(seed)
            self.net = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.PReLU(16), nn.Conv2d(16, 32, 3, 2, 1),
                                     nn.PReLU(32), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(128, dim))
            with torch.no_grad():
                for p in self.net.parameters():
                    if p.ndim > 1:  # He-normal: features that vary with the image
                        p.normal_(0, (2 / p[0].numel()) ** 0.5)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# --- ArcFace iresnet (insightface arcface_torch layout) ------------------------------------

def _bn(c: int, fused: bool) -> nn.Module:
    return nn.Identity() if fused else nn.BatchNorm2d(c, eps=1e-5)


class IBasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, fused: bool):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, eps=1e-5)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1, bias=fused)
        self.bn2 = _bn(cout, fused)
        self.prelu = nn.PReLU(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride, 1, bias=fused)
        self.bn3 = _bn(cout, fused)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=fused), _bn(cout, fused))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (x if self.downsample is None else self.downsample(x))

    def slots(self) -> list[tuple[str, nn.Module]]:
        out = [("bn", self.bn1), ("conv", self.conv1), ("prelu", self.prelu), ("conv", self.conv2)]
        return out + ([("conv", self.downsample[0])] if self.downsample is not None else [])


class IResNet(nn.Module):
    """iresnet: stem conv-bn-prelu, four stride-2 stages of `IBasicBlock`s, bn, fc, bn1d.
    `fused=True` is the inference form of the ONNX export (batch norms after convs folded
    into conv biases)."""

    def __init__(self, layers=(3, 4, 14, 3), widths=(64, 128, 256, 512), num_features: int = 512,
                 input_size: int = 112, fused: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=fused)
        self.bn1 = _bn(widths[0], fused)
        self.prelu = nn.PReLU(widths[0])
        cin, stages = widths[0], []
        for n, w in zip(layers, widths):
            stages.append(nn.Sequential(*[IBasicBlock(cin if i == 0 else w, w, 2 if i == 0 else 1, fused)
                                          for i in range(n)]))
            cin = w
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.bn2 = nn.BatchNorm2d(widths[-1], eps=1e-5)
        side = input_size // 16
        self.fc = nn.Linear(widths[-1] * side * side, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.features(self.fc(torch.flatten(self.bn2(x), 1)))

    def slots(self) -> list[tuple[str, nn.Module]]:
        """Weighted layers in execution order (fused form), as the ONNX graph lists them."""
        out = [("conv", self.conv1), ("prelu", self.prelu)]
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in stage:
                out += block.slots()
        return out + [("bn", self.bn2), ("fc", self.fc), ("bn", self.features)]


class ArcFace(FaceEmbedder):
    name = "arcface"

    def __init__(self, net: IResNet, input_size: int = 112, source: str = ""):
        super().__init__()
        self.net, self.input_size, self.source = net, input_size, source

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _onnx_layers(path: Path) -> tuple[list[tuple[str, list]], int]:
    """(kind, arrays) of every weighted node in graph order, and the input side."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise UserError("reading ArcFace ONNX weights needs the 'onnx' package: pip install onnx.") from None
    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:  # protobuf DecodeError and friends
        raise UserError(f"{path} is not a readable ONNX file ({type(exc).__name__}).") from None
    init = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    layers: list[tuple[str, list]] = []
    nodes = list(graph.node)
    for k, node in enumerate(nodes):
        arrays = [init[n] for n in node.input[1:] if n in init]
        if node.op_type in ("Sub", "Mul", "Div") and not any(kind == "conv" for kind, _ in layers):
            raise UserError(f"{path} normalises its input inside the graph (an MXNet-era model); "
                            f"use an arcface_torch export such as w600k_r50.onnx.")
        if node.op_type == "Conv":
            layers.append(("conv", arrays))
        elif node.op_type == "PRelu":
            layers.append(("prelu", [arrays[0].reshape(-1)]))
        elif node.op_type == "BatchNormalization":
            eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
            layers.append(("bn", arrays + [eps]))
        elif node.op_type == "Gemm":
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            w = arrays[0] if trans_b else arrays[0].T
            layers.append(("fc", [w] + arrays[1:]))
        elif node.op_type == "MatMul" and arrays:
            bias = []
            if k + 1 < len(nodes) and nodes[k + 1].op_type == "Add":
                bias = [init[n] for n in nodes[k + 1].input if n in init]
            layers.append(("fc", [arrays[0].T] + bias))
    dims = graph.input[0].type.tensor_type.shape.dim if graph.input else []
    side = dims[2].dim_value if len(dims) == 4 and dims[2].dim_value > 0 else 112
    return layers, side


def load_arcface_onnx(path: str | Path) -> ArcFace:
    """ArcFace (torch, fused iresnet) with the weights of an insightface/arcface_torch ONNX."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"the ArcFace model {path} does not exist.")
    layers, side = _onnx_layers(path)
    convs = [a[0] for kind, a in layers if kind == "conv"]
    fcs = [a[0] for kind, a in layers if kind == "fc"]
    if len(convs) < 2 or len(fcs) != 1:
        raise UserError(f"{path} does not look like an ArcFace iresnet (convolutions and one fc layer).")
    blocks, k = [], 1  # after the stem: blocks of two 3×3 convs, a stage's first one with a 1×1 downsample
    while k + 1 < len(convs):
        down = k + 2 < len(convs) and convs[k + 2].shape[-1] == 1
        blocks.append((convs[k].shape[0], down))
        k += 3 if down else 2
    widths, layers_per_stage = [], []
    for width, down in blocks:
        if down or not widths:
            widths.append(width)
            layers_per_stage.append(0)
        layers_per_stage[-1] += 1
    if len(widths) != 4 or k != len(convs):
        raise UserError(f"{path} does not look like an ArcFace iresnet (expected 4 stages, found {len(widths)}).")
    net = IResNet(layers_per_stage, widths, num_features=fcs[0].shape[0], input_size=side, fused=True)
    slots = net.slots()
    if [k for k, _ in slots] != [k for k, _ in layers]:
        raise UserError(f"{path} does not match the iresnet layout ({len(layers)} weighted layers, "
                        f"expected {len(slots)}); only arcface_torch iresnet exports are supported.")
    with torch.no_grad():
        for (kind, module), (_, arrays) in zip(slots, layers):
            tensors = [torch.from_numpy(a.copy()).float() for a in arrays if not isinstance(a, float)]
            if kind == "bn":
                params = [module.weight, module.bias, module.running_mean, module.running_var]
                module.eps = float(arrays[-1])
            else:
                params = [module.weight] + ([module.bias] if getattr(module, "bias", None) is not None else [])
            if len(tensors) != len(params) or any(t.shape != p.shape for t, p in zip(tensors, params)):
                raise UserError(f"{path}: a {kind} layer has unexpected weight shapes "
                                f"{[tuple(t.shape) for t in tensors]}; not an arcface_torch iresnet.")
            for t, p in zip(tensors, params):
                p.copy_(t)
    return ArcFace(net.eval(), side, source=str(path)).eval()


def find_arcface(models: str | None = None) -> Path | None:
    """An ArcFace ONNX: `models` (a file, a pack folder, or a folder of packs) or the insightface
    home (`$INSIGHTFACE_HOME` or ~/.insightface)/models/{buffalo_l,antelopev2}."""
    roots = []
    if models:
        base = Path(models).expanduser()
        if base.is_file():
            return base
        roots += [base, base / "buffalo_l", base / "models" / "buffalo_l", base / "antelopev2"]
    home = Path(os.environ.get("INSIGHTFACE_HOME", "~/.insightface")).expanduser()
    roots += [home / "models" / "buffalo_l", home / "models" / "antelopev2"]
    for root in roots:
        for name in ARCFACE_FILES:
            if (root / name).is_file():
                return root / name
    return None


def build_face_embedder(spec: str = "arcface", models: str | None = None) -> FaceEmbedder:
    """`arcface` (an insightface pack on disk, see `find_arcface`), a path to an ArcFace ONNX,
    or `tiny` (random, for tests)."""
    if spec == "tiny":
        return TinyFaceEmbedder().eval()
    if spec == "arcface":
        path = find_arcface(models)
        if path is None:
            raise UserError("no ArcFace weights found: put an insightface pack (e.g. buffalo_l with "
                            "w600k_r50.onnx) in ~/.insightface/models, or pass --face-embedder PATH.onnx.")
        return load_arcface_onnx(path)
    return load_arcface_onnx(spec)
