"""The development certificate authority of `manage.py webhook_receiver`, and a CA bundle that trusts it.

Development only. The CA is made once (trustme) and kept under var/:
`dev-ca.pem` (its certificate, to trust), `dev-ca-key.pem` (its key and
certificate, to issue the receiver's certificate). With DEBUG on, settings
point WEBHOOKS_CA_BUNDLE at `dev-ca-bundle.pem`: the CAs of REQUESTS_CA_BUNDLE
(certifi's when unset) plus this one, so real endpoints keep working too.
"""

import os
import re
import tempfile
from pathlib import Path

CA_FILE = "dev-ca.pem"
KEY_FILE = "dev-ca-key.pem"
BUNDLE_FILE = "dev-ca-bundle.pem"
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----\n?", re.DOTALL)


def _write_atomically(path: Path, data: bytes, *, mode: int = 0o644, exclusive: bool = False) -> bool:
    """Write path in one step; with exclusive, only if it does not exist. Return whether this call wrote it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if exclusive:
            try:
                os.link(tmp, path)  # fails if another process made it first
            except FileExistsError:
                return False
        else:
            os.replace(tmp, path)
        return True
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_or_create_ca(directory: Path):
    """Return the development trustme.CA kept in directory, creating it there on first use."""
    import trustme

    directory = Path(directory)
    key_path = directory / KEY_FILE
    if not key_path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA(organization_name="Webhooks development CA", organization_unit_name="webhook_receiver")
        _write_atomically(key_path, ca.private_key_pem.bytes() + ca.cert_pem.bytes(), mode=0o600, exclusive=True)
    blocks = {m.group(1): m.group(0) for m in _PEM_BLOCK.finditer(key_path.read_bytes())}
    cert = blocks[b"CERTIFICATE"]
    key = next(block for kind, block in blocks.items() if kind.endswith(b"PRIVATE KEY"))
    cert_path = directory / CA_FILE
    if not cert_path.exists() or cert_path.read_bytes() != cert:
        _write_atomically(cert_path, cert)
    return trustme.CA.from_pem(cert, key)


def dev_ca_bundle(directory: Path, base: str | None = None) -> str | None:
    """Return the path of base's CAs (certifi's by default) + the development CA, or None without a dev CA.

    The bundle is rewritten only when its content would change.
    """
    import certifi

    directory = Path(directory)
    ca_path = directory / CA_FILE
    if not ca_path.exists():
        return None
    bundle = (Path(base or certifi.where()).read_bytes().rstrip(b"\n") + b"\n\n# Webhooks development CA ("
              + str(ca_path).encode() + b")\n" + ca_path.read_bytes())
    path = directory / BUNDLE_FILE
    if not path.exists() or path.read_bytes() != bundle:
        _write_atomically(path, bundle)
    return str(path)
