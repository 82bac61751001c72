"""PyTorch reference rows for ``profile --compare-torch CKPT``: eager and torch.compile of the same checkpoint.

It lives with the training stack, not in the runtime (which imports no torch): ``runtime.profile`` loads it by
name, only when ``--compare-torch`` is given (``TORCH_REFERENCE``). The rows reuse the bundle
predictor's tokenize/preprocess/decode stages so only ``infer`` differs; infer includes the
host->device input copies and the device->host output copies, as the ORT/TensorRT rows do, and
synchronises the GPU before the clock stops. A torch.compile failure becomes a row saying why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from ..contract import OUTPUT_NAMES
from ..runtime.measure import measured_row
from ..runtime.predictor import Predictor
from ..runtime.profile_types import ProfileRequest, ProfileRow


def torch_infer_stage(module, device: str, before_step: Callable[[], None] | None = None):
    """A PyTorch module as the ``infer`` stage of a Predictor pipeline (host arrays in and out). ``before_step``
    runs first in every call (``torch.compiler.cudagraph_mark_step_begin`` for a reduce-overhead compile)."""
    import torch

    def infer(tokens, pixels):
        with torch.inference_mode():
            if before_step is not None:
                before_step()
            feed = (tokens.input_ids, tokens.attention_mask, pixels.pixel_values)
            outs = module(*(torch.from_numpy(array).to(device) for array in feed))
            result = {name: out.cpu().numpy() for name, out in zip(OUTPUT_NAMES, outs)}
        if device == "cuda":
            torch.cuda.synchronize()
        return result

    return infer


def torch_rows(req: ProfileRequest, stages_from: Predictor,
               log: Callable[[str], None]) -> tuple[list[ProfileRow], dict[str, object]]:
    """Eager (+ compiled) rows at every batch size, and the torch facts for the environment block."""
    try:
        import torch

        from ..model.clipguard import DecodedClipGuard
        from .checkpoint import load_checkpoint, restore_model
    except ImportError as exc:
        return [ProfileRow("pytorch", "torch", stages_from.device, "fp32", 0,
                           note=f"skipped: PyTorch stack not installed ({exc.name})")], {}
    device = stages_from.device if stages_from.device == "cpu" or torch.cuda.is_available() else "cpu"
    if req.threads:
        torch.set_num_threads(req.threads)
    model, _cfg = restore_model(load_checkpoint(req.compare_torch))
    eager = DecodedClipGuard(model).eval().to(device)
    env = {"torch": torch.__version__, "torch_threads": torch.get_num_threads(), "torch_device": device}
    infers = [("pytorch-eager", torch_infer_stage(eager, device), req)]
    if req.torch_compile:  # compiles on the first call, inside the warm-up (at least 2 iterations of it)
        compiled = torch_infer_stage(torch.compile(eager), device)
        infers.append(("torch.compile", compiled, replace(req, warmup=max(2, req.warmup))))
    rows = []
    for name, infer, row_req in infers:
        for batch in req.batch_sizes:
            log(f"profiling {name} on {device}, batch {batch}")
            pipeline = (stages_from.tokenize, stages_from.graph_pixels, infer, stages_from.decode)
            try:
                rows.append(measured_row(name, "torch", device, "fp32", batch, pipeline, row_req))
            except Exception as exc:  # inductor raises many types (no C++ compiler, unsupported op, ...)
                if name == "pytorch-eager":
                    raise
                reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
                rows.append(ProfileRow(name, "torch", device, "fp32", batch, note=f"compile failed: {reason}"))
    return rows, env
