"""``edge-clipguard keygen | sign | verify``: key pairs and bundle signatures (no torch; needs the [sign] extra)."""

from __future__ import annotations

import argparse


def _cmd_keygen(args: argparse.Namespace) -> None:
    from .signature import generate_keypair, key_id, load_public_key

    private_path, public_path = generate_keypair(args.out, force=args.force)
    print(f"private key: {private_path} (mode 600: keep it on the signing machine)")
    print(f"public key:  {public_path} (ship it to devices; key id {key_id(load_public_key(public_path))[:16]})")
    print(f"next: edge-clipguard sign BUNDLE --key {private_path}")


def _cmd_sign(args: argparse.Namespace) -> None:
    from .signature import sign_bundle

    info = sign_bundle(args.bundle, args.key)
    print(f"signed: {info.signature} ({info.describe()})")


def _cmd_verify(args: argparse.Namespace) -> None:
    from .signature import verify_bundle

    info = verify_bundle(args.bundle, args.key)
    print(f"verified: {info.bundle} ({info.describe()})")


def register(commands) -> None:
    """Add ``keygen``, ``sign`` and ``verify`` to the CLI's subparsers."""
    keygen = commands.add_parser("keygen", help="write a P-256 key pair for signing bundles")
    keygen.add_argument("--out", required=True, help="folder for private_key.pem (mode 600) and public_key.pem")
    keygen.add_argument("--force", action="store_true", help="replace an existing key pair in --out")
    keygen.set_defaults(handler=_cmd_keygen)

    sign = commands.add_parser("sign", help="sign a bundle: BUNDLE/bundle.sig over the manifest and every file")
    sign.add_argument("bundle", help="bundle directory written by 'edge-clipguard export'")
    sign.add_argument("--key", required=True, help="private key PEM (from keygen)")
    sign.set_defaults(handler=_cmd_sign)

    verify = commands.add_parser("verify", help="check a bundle's signature and that no file changed, went or came")
    verify.add_argument("bundle", help="signed bundle directory")
    verify.add_argument("--key", required=True, help="public key PEM (from keygen)")
    verify.set_defaults(handler=_cmd_verify)
