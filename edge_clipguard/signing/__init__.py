"""Bundle signatures (neutral layer, no torch): keygen, sign and verify; see ``signature`` for the layout."""

from .signature import (
    PRIVATE_KEY_NAME,
    PUBLIC_KEY_NAME,
    SIGNATURE_NAME,
    SignatureError,
    SignatureInfo,
    SignedFiles,
    generate_keypair,
    is_signed,
    key_id,
    load_private_key,
    load_public_key,
    sign_bundle,
    signature_path,
    signed_files,
    verify_bundle,
)

__all__ = ["PRIVATE_KEY_NAME", "PUBLIC_KEY_NAME", "SIGNATURE_NAME", "SignatureError", "SignatureInfo", "SignedFiles",
           "generate_keypair", "is_signed", "key_id", "load_private_key", "load_public_key", "sign_bundle",
           "signature_path", "signed_files", "verify_bundle"]
