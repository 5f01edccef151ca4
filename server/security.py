"""Security helpers: CURVE key files, the ZAP allow-list, and path confinement to media roots.

In: a keys folder, request paths, configured media roots. Out: key pairs (ZeroMQ's text
certificate files, never pickle), a running ZAP authenticator, or a resolved path inside a
root; for inputs every file the engine could read there (each frame of a sequence) is
checked too: inside a root once symlinks are resolved, and a regular file (never a FIFO,
socket or device, which would block a read forever). Anything else raises
`ProtocolError("path_refused", ...)` or `UserError`.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from engine.settings import Settings, path_fields
from server.protocol import ProtocolError

ZAP_DOMAIN = "ipfacediff"


def create_keys(folder: Path, clients: list[str]) -> list[Path]:
    """`folder/server.key(_secret)` (once) and `folder/clients/<name>.key(_secret)` per client."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    made = []
    if not (folder / "server.key_secret").exists():
        made += [Path(p) for p in zmq.auth.create_certificates(folder, "server")]
    (folder / "clients").mkdir(exist_ok=True)
    for name in clients:
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", name):
            raise ValueError(f"client name {name!r} may use only letters, digits, '.', '_' and '-'")
        if not (folder / "clients" / f"{name}.key_secret").exists():
            made += [Path(p) for p in zmq.auth.create_certificates(folder / "clients", name)]
    for p in folder.rglob("*.key_secret"):
        os.chmod(p, 0o600)
    return made


def load_server_keys(folder: Path) -> tuple[bytes, bytes]:
    public, secret = zmq.auth.load_certificate(folder / "server.key_secret")
    if not secret:
        raise ValueError(f"{folder / 'server.key_secret'} holds no secret key")
    return public, secret


def load_client_keys(folder: Path, name: str | None = None) -> tuple[bytes, bytes, bytes]:
    """(server public, client public, client secret) from a keys folder made by `ipfacediff keys`."""
    server_public, _ = zmq.auth.load_certificate(folder / "server.key")
    clients = folder / "clients"
    if name is None:
        names = sorted(p.stem for p in clients.glob("*.key_secret"))
        if not names:
            raise ValueError(f"{clients} holds no client secret key; run `ipfacediff keys --client NAME`")
        name = names[0]
    public, secret = zmq.auth.load_certificate(clients / f"{name}.key_secret")
    return server_public, public, secret


def start_authenticator(context: zmq.Context, allowed_dir: Path) -> ThreadAuthenticator:
    """ZAP handler admitting only the CURVE public keys stored as *.key in `allowed_dir`."""
    if not any(allowed_dir.glob("*.key")):
        raise ValueError(f"the client allow-list {allowed_dir} is empty; run `ipfacediff keys --client NAME`")
    auth = ThreadAuthenticator(context)
    auth.start()
    auth.configure_curve(domain=ZAP_DOMAIN, location=str(allowed_dir))
    return auth


class MediaRoots:
    """Confines request paths to the configured roots (after resolving symlinks)."""

    def __init__(self, roots: list[str | os.PathLike]):
        self.roots = [Path(os.path.realpath(r)) for r in roots]

    def _refuse(self, path: str, why: str) -> ProtocolError:
        return ProtocolError("path_refused", f"the path {path!r} is refused: {why}.")

    def resolve(self, path: str, *, for_output: bool = False) -> Path:
        if not self.roots:
            raise self._refuse(path, "this engine has no --media-root; send the frames inline instead")
        if "\x00" in path:
            raise self._refuse(path, "it contains a NUL character")
        p = Path(path)
        if not p.is_absolute():
            raise self._refuse(path, "paths must be absolute")
        if ".." in p.parts:
            raise self._refuse(path, "'..' is not allowed in paths")
        # Resolve the nearest existing ancestor (patterns like frame_%06d.exr and new output
        # folders do not exist yet); the remainder contains no '..' and no symlinks yet.
        existing, rest = p, []
        while not existing.exists() and existing != existing.parent:
            rest.insert(0, existing.name)
            existing = existing.parent
        real = Path(os.path.realpath(existing)).joinpath(*rest)
        if for_output and real in self.roots:
            raise self._refuse(path, "outputs must go into a folder inside a media root, not the root itself")
        if not self._inside(real):
            raise self._refuse(path, "it lies outside the engine's media roots "
                                     f"({', '.join(str(r) for r in self.roots)}) once symlinks are resolved")
        if real.exists():
            self._plain(path, real)
        return real

    def resolve_input(self, path: str) -> Path:
        """`resolve`, and every entry of the folder a sequence is read from (the folder itself, or
        a pattern's or missing file's folder) must stay inside the roots and be a plain file or folder."""
        real = self.resolve(path)
        folder = real if real.is_dir() else None if real.exists() else real.parent
        if folder is not None and folder.is_dir():
            for entry in os.scandir(folder):
                if not entry.name.startswith("."):  # hidden files are never read as frames
                    target = Path(os.path.realpath(entry.path))
                    if not self._inside(target):
                        raise self._refuse(path, f"{entry.name} links outside the engine's media roots")
                    if target.exists():
                        self._plain(path, target)
        return real

    def resolve_settings(self, settings: Settings) -> None:
        """Every setting that names a file (field metadata `path`, so a new one cannot slip by) is confined."""
        for name in path_fields():
            if getattr(settings, name) is not None:
                self.resolve(getattr(settings, name))

    def _inside(self, real: Path) -> bool:
        return any(real == root or root in real.parents for root in self.roots)

    def _plain(self, path: str, real: Path) -> None:
        mode = os.stat(real).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise self._refuse(path, f"{real.name} is not a regular file (a FIFO, socket or device)")
