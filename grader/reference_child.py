"""The child process that computes a reference's expected values (``python -m``).

Started by :func:`grader.reference.compute_values` with the pinned environment already
in place, so torch picks its portable kernels when it is imported here. Reads one JSON
request on stdin (the reference's path, the computing checks' specs, the torch settings
of the pin) and writes one JSON reply on stdout: ``{"values": ...}`` (encoded by
:func:`grader.plain.encode`) or ``{"error": message}``. Anything the reference prints
goes to stderr, so it cannot corrupt the reply.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO


def _apply_pin(pin: dict[str, Any]) -> str | None:
    """Set torch's run-time switches of the pin; a problem as a message, else None."""
    import torch

    torch.set_num_threads(int(pin["num_threads"]))
    # The documented switches; their stubs do not type them.
    torch.backends.mkldnn.enabled = bool(pin["mkldnn"])  # type: ignore[assignment]
    torch.backends.nnpack.set_flags(bool(pin["nnpack"]))  # type: ignore[no-untyped-call]
    capability = torch.backends.cpu.get_cpu_capability()
    wanted = pin.get("capability")
    if wanted is not None and capability != wanted:
        return (
            f"torch reports CPU capability {capability!r} where the pinned environment "
            f"asks for {wanted!r} (ATEN_CPU_CAPABILITY): expected values would depend on "
            "this machine's CPU"
        )
    return None


def compute(request: dict[str, Any]) -> dict[str, Any]:
    """The reply to one request: the encoded values, or the error naming file and check.
    The reply is plain JSON data."""
    from grader.checks import REGISTRY
    from grader.plain import encode

    path = Path(request["path"])
    problem = _apply_pin(request["pin"])
    if problem is not None:
        return {"error": f"{path}: {problem}"}
    spec = importlib.util.spec_from_file_location(f"grader_reference_{path.stem}", path)
    if spec is None or spec.loader is None:
        return {"error": f"{path}: cannot be imported"}
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        values = module.compute()
    except Exception as exc:
        return {"error": f"{path}: compute() failed: {type(exc).__name__}: {exc}"}
    if not isinstance(values, dict):
        return {"error": f"{path}: compute() must return a dict"}
    for item in request["checks"]:
        check = REGISTRY[item["type"]].spec.model_validate(item["spec"])
        try:
            value = check.compute_expected(module)
        except Exception as exc:
            return {
                "error": f"{path}: computing the expected values of check {check.id!r} "
                f"failed: {type(exc).__name__}: {exc}"
            }
        if value is not None:
            values[check.reference_key] = value
    try:
        encoded = encode(values)
        json.dumps(encoded)
    except (TypeError, ValueError) as exc:
        return {"error": f"{path}: the expected values are not plain data: {exc}"}
    return {"values": encoded}


def main() -> int:
    """Serve one request from stdin; the reply goes to the original stdout."""
    reply_to: TextIO = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    # Whatever the reference prints (Python or C code) goes to stderr, not into the reply.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    reply = compute(json.load(sys.stdin))
    with reply_to:
        json.dump(reply, reply_to)
    return 0


if __name__ == "__main__":
    sys.exit(main())
