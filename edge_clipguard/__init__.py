"""edge-clipguard: train, quantize and ship a text+image fusion model to edge GPUs.

This file stays import-light on purpose: ``edge_clipguard.runtime`` is a subpackage, so
importing the runtime runs this file first, and the runtime must not pull in torch.
"""

__version__ = "0.1.0"
