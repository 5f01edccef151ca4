"""Helpers for the OFX plugin tests: build the plugin, run the C++ test host, make clips.

In: the plugin sources (plugin_ofx/) and its build dependencies (cmake, a C++17 compiler,
libzmq, msgpack-cxx). Out: `build()` (configure + build into build/plugin_ofx or
$IPFD_OFX_BUILD_DIR, incremental between runs), `run_host(...)` (one scripted host session ->
parsed JSON events and output frames), `assert_clean_exit`, and clip helpers that mirror the
plugin's premultiplication arithmetic. Missing build dependencies raise BuildError with the
install command.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "plugin_ofx"
DEPS_HINT = ("install the plugin's build dependencies: apt-get install -y cmake g++ libzmq3-dev libmsgpack-cxx-dev "
             "(macOS: brew install cmake zeromq msgpack-cxx)")
DEPTH = {np.dtype(np.uint8): "byte", np.dtype(np.uint16): "short", np.dtype(np.float32): "float"}


class BuildError(RuntimeError):
    pass


@dataclass
class Build:
    dir: Path
    bundle: Path
    binary: Path
    host: Path
    seconds: float


def build(sanitize: str | None = None) -> Build:
    """Configure and build (incrementally) into build/plugin_ofx[_<sanitizer>] or $IPFD_OFX_BUILD_DIR."""
    default = ROOT / "build" / ("plugin_ofx" + (f"_{sanitize.replace(';', '_')}" if sanitize else ""))
    build_dir = Path(os.environ.get("IPFD_OFX_BUILD_DIR", default)) if not sanitize else default
    if shutil.which("cmake") is None:
        raise BuildError(f"cmake is not installed; {DEPS_HINT}")
    build_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    configure = ["cmake", "-S", str(PLUGIN), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release", "-DIPFD_BUILD_TESTS=ON"]
    if sanitize:
        configure.append(f"-DIPFD_SANITIZE={sanitize}")
    for cmd in (configure, ["cmake", "--build", str(build_dir), "--parallel", "2"]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BuildError(f"{' '.join(cmd)} failed ({DEPS_HINT}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    bundle = build_dir / "ipfacediff.ofx.bundle"
    return Build(build_dir, bundle, bundle / "Contents" / "Linux-x86-64" / "ipfacediff.ofx",
                 build_dir / "ofx_test_host", time.monotonic() - start)


# --- clips ------------------------------------------------------------------------------------
def make_clip(n: int, h: int, w: int, channels: int, dtype, seed: int = 0, alpha: str = "random") -> np.ndarray:
    """n frames of H x W x C, top row first; alpha 'random', 'opaque' or 'edges' (0 and full)."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        clip = rng.random((n, h, w, channels)).astype(np.float32)
        top = 1.0
    else:
        top = np.iinfo(dtype).max
        clip = rng.integers(0, top + 1, (n, h, w, channels), dtype=np.int64).astype(dtype)
    if channels == 4 and alpha == "opaque":
        clip[..., 3] = top
    elif channels == 4 and alpha == "edges":
        clip[:, :4, :, 3] = 0
        clip[:, -4:, :, 3] = top
    return clip


def premultiply(rgba: np.ndarray) -> np.ndarray:
    """What the plugin's premultiplication computes (integers: (c*a + max/2) // max)."""
    out = rgba.copy()
    if rgba.dtype.kind == "f":
        out[..., :3] = (rgba[..., :3] * rgba[..., 3:4]).astype(np.float32)
    else:
        top = np.iinfo(rgba.dtype).max
        c, a = rgba[..., :3].astype(np.uint64), rgba[..., 3:4].astype(np.uint64)
        out[..., :3] = ((c * a + top // 2) // top).astype(rgba.dtype)
    return out


def unpremultiply(rgba: np.ndarray) -> np.ndarray:
    """What the plugin sends for premultiplied input (straight colour; alpha 0 left alone)."""
    out = rgba.copy()
    a = rgba[..., 3:4]
    if rgba.dtype.kind == "f":
        with np.errstate(divide="ignore", invalid="ignore"):
            out[..., :3] = np.where(a > 0, rgba[..., :3] / np.where(a > 0, a, 1), rgba[..., :3]).astype(np.float32)
    else:
        top = np.iinfo(rgba.dtype).max
        c, a64 = rgba[..., :3].astype(np.uint64), a.astype(np.uint64)
        straight = np.minimum(top, (c * top + a64 // 2) // np.maximum(a64, 1))
        out[..., :3] = np.where(a64 > 0, straight, c).astype(rgba.dtype)
    return out


# --- the host ---------------------------------------------------------------------------------
@dataclass
class HostRun:
    events: list[dict]
    returncode: int
    stderr: str
    outdir: Path
    frames_shape: tuple = field(default_factory=tuple)
    dtype: np.dtype = np.dtype(np.uint8)

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e.get("event") == kind]

    def last_status(self) -> str:
        st = self.of("status")
        return st[-1]["status_text"] if st else ""

    def output(self, t: int, seq: int, shape: tuple | None = None) -> np.ndarray:
        path = self.outdir / f"frame_{t}_{seq}.raw"
        return np.fromfile(path, dtype=self.dtype).reshape(shape or self.frames_shape)

    def renders(self) -> list[dict]:
        return self.of("render")


def run_host(build: Build, tmp: Path, clip: np.ndarray, commands: list[str], *, first: int = 0,
             origin: tuple[int, int] = (0, 0), negative_rowbytes: bool = False, pad: int = 0,
             premult: bool = False, context: str = "filter", message_v2: bool = True, proxy: float = 1.0,
             timeout: float = 600, env: dict | None = None) -> HostRun:
    """One host session on `clip` (N x H x W x C); OUT in commands is replaced by the output folder."""
    tmp.mkdir(parents=True, exist_ok=True)
    clip_path = tmp / "clip.raw"
    np.ascontiguousarray(clip).tofile(clip_path)
    outdir = tmp / "out"
    outdir.mkdir(exist_ok=True)
    n, h, w, c = clip.shape
    args = [str(build.host), str(build.bundle), "--clip", str(clip_path), "--size", f"{w}x{h}", "--channels", str(c),
            "--depth", DEPTH[clip.dtype], "--first", str(first), "--origin", f"{origin[0]},{origin[1]}",
            "--pad", str(pad), "--context", context, "--proxy", str(proxy)]
    if negative_rowbytes:
        args.append("--negative-rowbytes")
    if premult:
        args.append("--premult")
    if not message_v2:
        args.append("--no-message-v2")
    args += ["--", *[cmd.replace("OUT", str(outdir)) for cmd in commands]]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **env} if env else None)
    events = []
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    assert proc.returncode >= 0, (f"the test host died from signal {signal.Signals(-proc.returncode).name} "
                                  f"(a plugin crash)\nstdout:\n{proc.stdout[-6000:]}\nstderr:\n{proc.stderr[-6000:]}")
    assert proc.returncode in (0, 3), (f"the test host exited with {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}"
                                       f"\nstderr:\n{proc.stderr[-8000:]}")
    assert not [e for e in events if e["event"] in ("fatal", "misuse")], proc.stdout[-6000:]
    return HostRun(events, proc.returncode, proc.stderr, outdir, (h, w, c), clip.dtype)


def assert_clean_exit(run: HostRun) -> dict:
    """No leftover threads, descriptors or images after DestroyInstance + Unload + dlclose."""
    assert run.returncode == 0, (run.events[-5:], run.stderr[-4000:])
    leaks = run.of("leaks")[-1]
    assert leaks["images_outstanding"] == 0, leaks
    assert leaks["threads_after"] == leaks["threads_before"], leaks
    assert leaks["fds_after"] == leaks["fds_before"], leaks
    return leaks


