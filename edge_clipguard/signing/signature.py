"""Signed bundles: one ECDSA signature over ``manifest.json`` and every other file of a bundle (no torch).

Layout. The signature is one file inside the bundle, ``BUNDLE/bundle.sig``, written in the format of the
OpenSSF model-signing library's key-based method (``model_signing`` 1.x, ``use_elliptic_key_signer``), so
``model_signing verify key BUNDLE --signature BUNDLE/bundle.sig --public_key public_key.pem`` accepts our
bundles and ``verify_bundle`` accepts theirs:

- a Sigstore bundle (media type v0.3, ``verificationMaterial.publicKey.hint`` = sha256 of the public key
  PEM, our "key id") holding a DSSE envelope; its signature is ECDSA (P-256 + SHA-256 from ``keygen``;
  P-384 and P-521 keys work too) over the DSSE pre-authentication encoding of the payload;
- the payload is an in-toto statement whose predicate lists every regular file under the bundle directory,
  recursively, hidden ones included, as ``{name, algorithm: sha256, digest}`` sorted by path, and records
  ``ignore_paths: ["bundle.sig"]``: the signature is the one file it does not cover. The subject is the
  bundle's name and the sha256 over the listed digests.

Verification reads nothing of the bundle but the signature before the signature has verified with the
given public key; then the directory is hashed again and must hold exactly the signed files with the signed
digests. A changed byte, a missing file, an extra one (anywhere under the bundle), a symbolic link, a
missing or malformed signature, or another key: ``SignatureError``, one line.

``cryptography`` (the ``[sign]`` extra) is imported only when a key is used: an unsigned bundle loads on
an install without it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import write_text_atomic
from ..bundle import MANIFEST_NAME, BundleError, IntegrityError, read_manifest, sha256_file

SIGNATURE_NAME = "bundle.sig"
PRIVATE_KEY_NAME = "private_key.pem"
PUBLIC_KEY_NAME = "public_key.pem"

# The model-signing v1.0 format (Sigstore bundle + DSSE + in-toto statement).
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
# Curves model-signing accepts, with the hash its ECDSA signatures use.
CURVE_HASHES = {"secp256r1": "SHA256", "secp384r1": "SHA384", "secp521r1": "SHA512"}
MAX_SIGNATURE_BYTES = 16 << 20
MAX_KEY_BYTES = 64 << 10
NAMES_SHOWN = 4


class SignatureError(BundleError):
    """A bundle's signature is missing, malformed, made with another key, or does not match the bundle's files;
    or a key file is missing or of the wrong kind."""


@dataclass(frozen=True)
class SignatureInfo:
    """What a signature covers: the bundle, the signature file, the key id and the number of files."""

    bundle: Path
    signature: Path
    key_id: str  # sha256 of the public key's PEM (SubjectPublicKeyInfo), model-signing's key hint
    files: int

    def describe(self) -> str:
        return f"{self.files} files, key id {self.key_id[:16]}"


# -- keys ---------------------------------------------------------------------------------------------------
def _require_cryptography() -> None:
    try:
        import cryptography  # noqa: F401
    except ImportError:
        raise SignatureError("bundle signatures need the 'cryptography' package: "
                             "pip install 'edge-clipguard[sign]'") from None


def _read_key_file(path: Path, what: str) -> bytes:
    if not path.is_file():
        raise SignatureError(f"{path}: no such {what} key file")
    if path.stat().st_size > MAX_KEY_BYTES:
        raise SignatureError(f"{path}: {path.stat().st_size} bytes is too large for a PEM {what} key")
    return path.read_bytes()


def _check_curve(public_key: Any, where: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    if not isinstance(public_key, ec.EllipticCurvePublicKey) or public_key.curve.name not in CURVE_HASHES:
        kind = getattr(getattr(public_key, "curve", None), "name", type(public_key).__name__)
        raise SignatureError(f"{where}: expected an elliptic-curve key on P-256, P-384 or P-521 (what "
                             f"'edge-clipguard keygen' writes), got {kind}")


def _ecdsa(public_key: Any):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.ECDSA(getattr(hashes, CURVE_HASHES[public_key.curve.name])())


def key_id(public_key: Any) -> str:
    """sha256 (hex) of the public key's PEM: the hint model-signing records and checks."""
    from cryptography.hazmat.primitives import serialization

    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()


def load_private_key(path: str | os.PathLike) -> Any:
    """The EC private key of a PEM file (unencrypted PKCS#8 or SEC1, as keygen and openssl write them)."""
    _require_cryptography()
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    path = Path(path)
    data = _read_key_file(path, "private")
    if b"PUBLIC KEY-----" in data:
        raise SignatureError(f"{path}: is a public key; signing needs the private key ({PRIVATE_KEY_NAME} from keygen)")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise SignatureError(f"{path}: the private key is password-protected; use an unencrypted key kept "
                             "with mode 600 (as 'edge-clipguard keygen' writes it)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise SignatureError(f"{path}: not a PEM private key") from None
    _check_curve(key.public_key(), path)
    return key


def load_public_key(path: str | os.PathLike) -> Any:
    """The EC public key of a PEM file (SubjectPublicKeyInfo, as keygen and openssl write them)."""
    _require_cryptography()
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    path = Path(path)
    data = _read_key_file(path, "public")
    if b"PRIVATE KEY-----" in data:
        raise SignatureError(f"{path}: is a private key; verifying takes the public key ({PUBLIC_KEY_NAME} from "
                             "keygen), and private keys stay off devices")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise SignatureError(f"{path}: not a PEM public key") from None
    _check_curve(key, path)
    return key


def generate_keypair(out_dir: str | os.PathLike, force: bool = False) -> tuple[Path, Path]:
    """Write a new P-256 key pair: ``OUT/private_key.pem`` (mode 600) and ``OUT/public_key.pem``.

    Refuses to replace an existing pair unless ``force``: bundles signed with the old key would stop
    verifying with the new public key."""
    _require_cryptography()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    out = Path(out_dir)
    private_path, public_path = out / PRIVATE_KEY_NAME, out / PUBLIC_KEY_NAME
    existing = [p for p in (private_path, public_path) if p.exists()]
    if existing and not force:
        raise SignatureError(f"{existing[0]}: already exists; pass --force to replace the key pair (bundles signed "
                             "with the old key then no longer verify with the new public key)")
    key = ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    write_text_atomic(private_path, private_pem.decode("ascii"), mode=0o600)
    write_text_atomic(public_path, public_pem.decode("ascii"))
    return private_path, public_path


# -- the signed statement -----------------------------------------------------------------------------------
def _pae(payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the ECDSA signature is computed over."""
    return b"DSSEv1 %d %s %d %s" % (len(PAYLOAD_TYPE), PAYLOAD_TYPE.encode(), len(payload), payload)


def _ignored(name: str, ignore_paths: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p.rstrip("/") + "/") for p in ignore_paths)


def _show(names: list[str]) -> str:
    shown = [n if n.isprintable() else repr(n) for n in names[:NAMES_SHOWN]]
    return ", ".join(shown) + (f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else "")


def bundle_files(bundle: Path, ignore_paths: Iterable[str] = (SIGNATURE_NAME,)) -> list[str]:
    """Every regular file under ``bundle`` (relative POSIX paths, sorted), less ``ignore_paths``.

    A symbolic link or a special file anywhere under the bundle is refused: a signed bundle holds plain
    files only, so what is hashed is what the runtime later opens."""
    ignore_paths = list(ignore_paths)

    def refuse(exc: OSError) -> None:
        raise SignatureError(f"{exc.filename}: cannot be read ({exc.strerror})")

    names = []
    for root, dirs, files in os.walk(bundle, onerror=refuse):
        here = Path(root)
        for entry in sorted(dirs + files):
            path = here / entry
            name = path.relative_to(bundle).as_posix()
            if _ignored(name, ignore_paths):
                continue
            if path.is_symlink():
                raise SignatureError(f"{path}: is a symbolic link; a signed bundle holds regular files only")
            if entry in files:
                if not path.is_file():
                    raise SignatureError(f"{path}: not a regular file; a signed bundle holds regular files only")
                names.append(name)
        dirs[:] = [d for d in dirs if not _ignored((here / d).relative_to(bundle).as_posix(), ignore_paths)]
    return sorted(names)


def _root_digest(digests: Iterable[str]) -> str:
    hasher = hashlib.sha256()
    for digest in digests:
        hasher.update(bytes.fromhex(digest))
    return hasher.hexdigest()


def _statement(name: str, digests: dict[str, str]) -> dict[str, Any]:
    resources = [{"name": n, "algorithm": "sha256", "digest": digests[n]} for n in sorted(digests)]
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": _root_digest(r["digest"] for r in resources)}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": False,
                              "ignore_paths": [SIGNATURE_NAME]},
            "resources": resources,
        },
    }


# -- sign and verify ----------------------------------------------------------------------------------------
def signature_path(bundle_dir: str | os.PathLike) -> Path:
    return Path(bundle_dir) / SIGNATURE_NAME


def is_signed(bundle_dir: str | os.PathLike) -> bool:
    return signature_path(bundle_dir).is_file()


def sign_bundle(bundle_dir: str | os.PathLike, private_key: str | os.PathLike | Any,
                name: str | None = None) -> SignatureInfo:
    """Sign a bundle: write ``BUNDLE/bundle.sig`` (atomically) over its manifest and every other file.

    ``private_key``: a PEM path or a key from ``load_private_key``. ``name``: the bundle name recorded in the
    statement (default: the directory's name; export passes the final name while it writes a temp folder).
    The bundle must be intact first: files recorded in the manifest must match their sha256.
    """
    bundle = Path(bundle_dir)
    key = private_key if not isinstance(private_key, (str, os.PathLike)) else load_private_key(private_key)
    manifest = read_manifest(bundle)
    digests = {n: sha256_file(bundle / n) for n in bundle_files(bundle)}
    for file, expected in manifest.files.items():
        if file not in digests:
            raise BundleError(f"{bundle / file}: listed in the manifest but missing from the bundle; not signing")
        if digests[file] != expected:
            raise IntegrityError(f"{bundle / file}: sha256 differs from the manifest's (file changed); not signing")
    statement = _statement(name or bundle.resolve().name, digests)
    payload = json.dumps(statement, indent=2).encode("utf-8")
    signature = key.sign(_pae(payload), _ecdsa(key.public_key()))
    key_hint = key_id(key.public_key())
    document = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key_hint}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode("ascii"),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(signature).decode("ascii"), "keyid": ""}],
        },
    }
    path = write_text_atomic(signature_path(bundle), json.dumps(document) + "\n")
    return SignatureInfo(bundle, path, key_hint, len(digests))


def _signed_payload(path: Path, public_key: Any, key_source: str) -> bytes:
    """The statement bytes of signature file ``path`` after its ECDSA signature verified with ``public_key``."""
    from cryptography.exceptions import InvalidSignature

    if path.stat().st_size > MAX_SIGNATURE_BYTES:
        raise SignatureError(f"{path}: {path.stat().st_size} bytes is too large for a bundle signature")
    try:
        document = json.loads(path.read_bytes())
        if document["mediaType"] != BUNDLE_MEDIA_TYPE:
            raise ValueError(f"mediaType {document['mediaType']!r}, expected {BUNDLE_MEDIA_TYPE!r}")
        hint = (document.get("verificationMaterial") or {}).get("publicKey", {}).get("hint")
        envelope = document["dsseEnvelope"]
        if envelope["payloadType"] != PAYLOAD_TYPE:
            raise ValueError(f"payloadType {envelope['payloadType']!r}, expected {PAYLOAD_TYPE!r}")
        payload = base64.b64decode(envelope["payload"], validate=True)
        signatures = [base64.b64decode(s["sig"], validate=True) for s in envelope["signatures"]]
        if len(signatures) != 1:
            raise ValueError(f"{len(signatures)} signatures, expected 1")
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error, RecursionError) as exc:
        raise SignatureError(f"{path}: not a readable bundle signature ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:200] if str(exc) else ''})") from None
    expected = key_id(public_key)
    if hint and hint != expected:
        raise SignatureError(f"{path}: signed by another key (key id {str(hint)[:16]}; {key_source} has key id "
                             f"{expected[:16]})")
    try:
        public_key.verify(signatures[0], _pae(payload), _ecdsa(public_key))
    except InvalidSignature:
        raise SignatureError(f"{path}: the signature does not verify with {key_source} (another key, or the "
                             "signature file was changed)") from None
    return payload


def _signed_digests(payload: bytes, path: Path) -> tuple[dict[str, str], list[str]]:
    """(file -> sha256, ignore_paths) from a verified statement; SignatureError if it is not one we can check."""
    try:
        statement = json.loads(payload)
        if statement["_type"] != STATEMENT_TYPE or statement["predicateType"] != PREDICATE_TYPE:
            raise ValueError(f"statement type {statement['_type']!r} / {statement['predicateType']!r}")
        serialization = statement["predicate"]["serialization"]
        if serialization["method"] != "files" or serialization["hash_type"] != "sha256":
            raise ValueError(f"serialization {serialization['method']!r}/{serialization['hash_type']!r}, "
                             "expected 'files'/'sha256'")
        ignore_paths = [str(p) for p in serialization.get("ignore_paths", [])]
        digests: dict[str, str] = {}
        for resource in statement["predicate"]["resources"]:
            name, digest = str(resource["name"]), str(resource["digest"]).lower()
            if resource["algorithm"] != "sha256" or len(digest) != 64:
                raise ValueError(f"resource {name!r} is not a sha256 digest")
            if name in digests:
                raise ValueError(f"resource {name!r} is listed twice")
            digests[name] = digest
        [subject] = statement["subject"]
        if subject["digest"]["sha256"] != _root_digest(digests.values()):
            raise ValueError("the subject digest does not match the listed files")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise SignatureError(f"{path}: signed statement is not a model-signing v1.0 file list "
                             f"({type(exc).__name__}: {str(exc)[:200]})") from None
    return digests, ignore_paths


@dataclass(frozen=True)
class SignedFiles:
    """What a verified signature vouches for: each file's sha256 (bundle-relative names), and by which key."""

    digests: dict[str, str]
    ignore_paths: tuple[str, ...]
    key_id: str
    signature: Path


def signed_files(bundle_dir: str | os.PathLike, public_key: str | os.PathLike | Any) -> SignedFiles:
    """Check ``BUNDLE/bundle.sig`` with ``public_key`` (PEM path or key object) and return the digests it signs.
    Reads nothing of the bundle but the signature; a loader then checks each file it reads against these."""
    key_source = str(public_key) if isinstance(public_key, (str, os.PathLike)) else "the given key"
    key = load_public_key(public_key) if isinstance(public_key, (str, os.PathLike)) else public_key
    bundle = Path(bundle_dir)
    if not bundle.is_dir():
        raise SignatureError(f"{bundle}: not a bundle directory")
    path = signature_path(bundle)
    if not path.is_file():
        raise SignatureError(f"{bundle}: not signed ({SIGNATURE_NAME} is missing); sign it with "
                             f"'edge-clipguard sign {bundle} --key PRIVATE_KEY' or load it without a verify key")
    digests, ignore_paths = _signed_digests(_signed_payload(path, key, key_source), path)
    return SignedFiles(digests, tuple(ignore_paths), key_id(key), path)


def verify_bundle(bundle_dir: str | os.PathLike, public_key: str | os.PathLike | Any) -> SignatureInfo:
    """Check ``BUNDLE/bundle.sig`` with ``public_key`` (PEM path or key object), then that the bundle holds
    exactly the signed files with the signed contents. Raises SignatureError (one line) otherwise."""
    bundle = Path(bundle_dir)
    signed = signed_files(bundle, public_key)
    actual = {n: sha256_file(bundle / n) for n in bundle_files(bundle, [*signed.ignore_paths, SIGNATURE_NAME])}
    changed = sorted(n for n in signed.digests if n in actual and actual[n] != signed.digests[n])
    missing = sorted(set(signed.digests) - set(actual))
    extra = sorted(set(actual) - set(signed.digests))
    if changed or missing or extra:
        parts = [f"{label}: {_show(names)}" for label, names in
                 (("changed", changed), ("missing", missing), ("extra", extra)) if names]
        stale = (" (a bundle changed after signing, e.g. by build-engine, must be signed again)"
                 if MANIFEST_NAME in changed else "")
        raise SignatureError(f"{bundle}: does not match its signature ({'; '.join(parts)}){stale}")
    return SignatureInfo(bundle, signed.signature, signed.key_id, len(signed.digests))
