"""``relaax-zmq export --format torchscript|onnx -o FILE``: the trained policy, standalone.

Joins the shards' slices of the newest complete checkpoint (or ``--step``), builds
the algorithm's deterministic policy (``relaax_zmq.api.networks``) and writes it as a TorchScript file
(``torch.jit.load(FILE)(observations)``) or an ONNX model (input ``observations``
(batch, *shape), output ``actions``; run it with onnxruntime). Neither needs
relaax-zmq: the file holds the network, the weights, the observation normalisation
and the action rule.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from relaax_zmq.cli.common import CliError, add_app_option, add_json_option, load_app, print_json

HELP = "write the trained policy as a TorchScript or ONNX file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("torchscript", "onnx"), default="torchscript")
    parser.add_argument(
        "-o", "--output", type=Path, help="file to write (default: policy.pt/.onnx)"
    )
    parser.add_argument("--step", type=int, help="global step (default: the newest complete one)")
    add_app_option(parser)
    add_json_option(parser)


def example_input(config_shape: tuple[int, ...], dtype: str, batch: int = 2):  # noqa: ANN201
    import torch

    if dtype == "uint8":
        return torch.zeros((batch, *config_shape), dtype=torch.uint8)
    return torch.zeros((batch, *config_shape), dtype=torch.float32)


def write_torchscript(policy, example, path: Path) -> None:  # noqa: ANN001
    import torch

    with torch.no_grad():
        traced = torch.jit.trace(policy, example, check_trace=False)
    traced.save(str(path))


def write_onnx(policy, example, path: Path) -> None:  # noqa: ANN001
    import torch

    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise CliError(
            f"ONNX export needs the onnx and onnxscript packages ({exc}); "
            "pip install 'relaax-zmq[export]'"
        ) from None
    batch = torch.export.Dim("batch", min=1)
    with torch.no_grad():
        program = torch.onnx.export(
            policy,
            (example,),
            dynamo=True,
            input_names=["observations"],
            output_names=["actions"],
            dynamic_shapes={"observations": {0: batch}},
        )
    program.save(str(path))


def run(args: argparse.Namespace) -> int:
    from relaax_zmq.api.networks import algorithm_parts, policy_module
    from relaax_zmq.checkpoint.weights import assemble

    config = load_app(args.config)
    weights = assemble(config, args.step)
    policy = policy_module(config, weights.params, weights.extras.get("statistics"))
    if policy.recurrent:
        raise CliError("a recurrent (LSTM) policy keeps state between steps: not exported")
    _, hyper = algorithm_parts(config)
    spec = hyper.input.spec()
    example = example_input(tuple(spec.shape), str(spec.dtype))
    suffix = ".pt" if args.format == "torchscript" else ".onnx"
    out = args.output or Path(f"policy{suffix}")
    if args.format == "torchscript":
        write_torchscript(policy, example, out)
    else:
        write_onnx(policy, example, out)
    figures = {"file": str(out), "format": args.format, "step": weights.step}
    if args.json:
        print_json(figures)
    else:
        print(f"policy of step {weights.step:,} written to {out} ({args.format})")
    return 0
