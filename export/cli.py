"""``edge-clipguard export | build-engine``: checkpoint -> bundle, and TensorRT engines on the target GPU.

Building the parsers imports nothing heavy (no torch, onnx or tensorrt): the handlers import what they run.
"""

from __future__ import annotations

import argparse

from ..bundle import parse_precisions


def _cmd_export(args: argparse.Namespace) -> None:
    from .bundle_writer import export_bundle, format_summary
    from .types import BatchProfile, ExportRequest

    req = ExportRequest(checkpoint=args.checkpoint, out=args.out, int8=args.int8, cpu_int8=args.cpu_int8,
                        fp16=args.fp16, calib=args.calib, calib_samples=args.calib_samples, val_data=args.val_data,
                        batch=BatchProfile.parse(args.batch), engine=args.engine, workspace_gib=args.workspace,
                        opset=args.opset, force=args.force, config=args.config, sign_key=args.sign_key,
                        parts=args.parts)
    print(format_summary(export_bundle(req)))


def _cmd_build_engine(args: argparse.Namespace) -> None:
    from .engine_step import build_engine_command, format_build_summary
    from .types import BatchProfile

    result = build_engine_command(args.bundle, BatchProfile.parse(args.batch), args.workspace,
                                  parse_precisions(args.precision), log=print, timing_cache=args.timing_cache,
                                  device_index=args.device, sign_key=args.sign_key)
    print(format_build_summary(result))


def register(commands) -> None:
    """Add ``export`` and ``build-engine`` to the CLI's subparsers."""
    export = commands.add_parser("export",
                                 help="checkpoint -> bundle: validated ONNX fp32 [+ INT8 Q/DQ, fp16] [+ engines]")
    export.add_argument("checkpoint", help="a checkpoint written by 'train' (fp32 or --qat)")
    export.add_argument("--out", required=True, help="bundle directory to create")
    export.add_argument("--int8", action="store_true",
                        help="also write the INT8 Q/DQ ONNX (TensorRT, and OpenVINO on CPUs)")
    export.add_argument("--cpu-int8", action=argparse.BooleanOptionalAction, default=False,
                        help="with --int8: also a U8S8 twin for CPU devices that run ONNX Runtime only")
    export.add_argument("--fp16", action="store_true", help="also write an fp16-typed ONNX")
    export.add_argument("--parts", action=argparse.BooleanOptionalAction, default=True,
                        help="also cut each ONNX file into its text part and its image + fusion part, so the runtime "
                             "encodes each text once (default); --no-parts: whole graphs only, a smaller bundle")
    export.add_argument("--calib", help="calibration folder or manifest (default: the committed calibration_data/)")
    export.add_argument("--calib-samples", type=int, default=0, help="use only the first N calibration rows")
    export.add_argument("--val-data", help="labelled manifest for the accuracy column (default: calibration rows)")
    export.add_argument("--batch", default="1:1:8", help="TensorRT batch profile MIN:OPT:MAX (default 1:1:8)")
    export.add_argument("--engine", default="auto", choices=("auto", "always", "never"),
                        help="build TensorRT engines: auto = when tensorrt and a GPU are present")
    export.add_argument("--workspace", type=float, default=2.0, help="TensorRT workspace limit in GiB")
    export.add_argument("--opset", type=int, default=17, help="ONNX opset (13-20)")
    export.add_argument("--config", help="refuse unless the checkpoint was trained with this config (name or JSON)")
    export.add_argument("--force", action="store_true", help="replace an existing bundle directory")
    export.add_argument("--sign-key", metavar="PRIV", help="sign the bundle with this private key (see keygen)")
    export.set_defaults(handler=_cmd_export)


    parser = commands.add_parser("build-engine", help="build TensorRT engines for a bundle on this GPU (the target)")
    parser.add_argument("bundle", help="bundle directory written by 'edge-clipguard export'")
    parser.add_argument("--batch", default="1:1:8", help="optimization profile of the batch axis, MIN:OPT:MAX")
    parser.add_argument("--workspace", type=float, default=2.0, help="builder workspace limit in GiB")
    parser.add_argument("--precision", default=None,
                        help="comma list of int8,fp16,fp32 "
                             "(default: int8 and fp16 when the bundle has them, else fp32)")
    parser.add_argument("--timing-cache", default=None,
                        help="timing cache file to reuse and update (default: one per TensorRT version and GPU "
                             "under the edge-clipguard cache dir)")
    parser.add_argument("--device", type=int, default=0, help="CUDA device index")
    parser.add_argument("--sign-key", metavar="PRIV",
                        help="re-sign the bundle with this private key after adding the engines (a signed bundle "
                             "built without it keeps a stale signature that verify refuses)")
    parser.set_defaults(handler=_cmd_build_engine)
