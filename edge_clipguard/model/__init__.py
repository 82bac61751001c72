"""ClipGuard Fusion: text tower + CNN image tower + cross-attention fusion + score and box heads."""

from .clipguard import ClipGuardFusion, DecodedClipGuard, build_model

__all__ = ["ClipGuardFusion", "DecodedClipGuard", "build_model"]
