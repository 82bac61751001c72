"""A bundle opened for loading: every byte a backend runs is a byte that was checked.

The loader reads each file it needs once, into memory, checks the sha256 of those bytes against the
manifest, and hands the backends bytes, never paths. For a signed bundle the signature is checked first
(nothing else of the bundle is read before it verifies), then the bytes of ``manifest.json`` against the
digest it signs, and the manifest is parsed from exactly those bytes: the manifest's own per-file digests
are then signed facts, so each member checked against them is checked against the signature. A file
swapped on disk after its check is never run, and files the chosen backend does not need (other
precisions, engines for other GPUs) are not read at all; ``edge-clipguard verify`` still checks every file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..bundle import MANIFEST_NAME, IntegrityError, Manifest, manifest_path, parse_manifest, read_verified, sha256_bytes
from ..signing import SignatureError, SignedFiles, signed_files


@dataclass(frozen=True)
class OpenedBundle:
    """The manifest of ``directory``, parsed from checked bytes, and the signature's facts when one was checked."""

    directory: Path
    manifest: Manifest
    signed: SignedFiles | None = None

    def read(self, name: str) -> bytes:
        """The bytes of bundle file ``name``, read once, after they match the (verified) manifest's sha256."""
        try:
            return read_verified(self.directory, self.manifest, name)
        except IntegrityError:
            if self.signed is None:
                raise
            raise SignatureError(f"{self.directory}: does not match its signature (changed: {name})") from None


def open_bundle(bundle_dir: str | Path, verify_key=None) -> OpenedBundle:
    """Read ``manifest.json`` once; with ``verify_key`` (public key PEM path or key object) check the signature
    first and the manifest's bytes against it. Raises BundleError / SignatureError with one line."""
    directory = Path(bundle_dir)
    signed = signed_files(directory, verify_key) if verify_key is not None else None
    path = manifest_path(directory)
    data = path.read_bytes()
    if signed is not None and signed.digests.get(MANIFEST_NAME) != sha256_bytes(data):
        raise SignatureError(f"{directory}: does not match its signature (changed: {MANIFEST_NAME}); a bundle "
                             "changed after signing, e.g. by build-engine, must be signed again")
    return OpenedBundle(directory, parse_manifest(data, where=str(path)), signed)
