"""Security helpers: CURVE key files, the ZAP allow-list, and path confinement to media roots.

In: a keys folder, request paths, configured media roots. Out: key pairs (ZeroMQ's text
certificate files, never pickle), a running ZAP authenticator, or a resolved path inside a
root; anything else raises `ProtocolError("path_refused", ...)` or `UserError`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

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
        for root in self.roots:
            if real == root and for_output:
                raise self._refuse(path, "outputs must go into a folder inside a media root, not the root itself")
            if real == root or root in real.parents:
                return real
        raise self._refuse(path, "it lies outside the engine's media roots "
                                 f"({', '.join(str(r) for r in self.roots)}) once symlinks are resolved")
