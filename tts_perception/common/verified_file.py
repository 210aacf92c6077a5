"""Cache files verified by hash before use (engines, built artefacts).

``write_verified`` stores the bytes and a ``.sha256`` sidecar atomically; ``read_verified``
returns the bytes only when they match their sidecar, so a truncated, corrupted or swapped
cache entry is rebuilt instead of being deserialized.
"""

import hashlib
from pathlib import Path
from typing import Optional


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + '.sha256')


def write_verified(path: Path, data: bytes) -> None:
    """Write ``data`` and its SHA-256 next to it (each through a temporary file)."""
    path = Path(path)
    digest = hashlib.sha256(data).hexdigest()
    for target, payload in ((path, data), (_sidecar(path), digest.encode())):
        tmp = target.with_name(target.name + '.partial')
        tmp.write_bytes(payload)
        tmp.replace(target)


def read_verified(path: Path) -> Optional[bytes]:
    """The file's bytes if its sidecar hash matches; None if missing, unhashed or altered."""
    path = Path(path)
    try:
        data = path.read_bytes()
        want = _sidecar(path).read_text().strip()
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == want else None
