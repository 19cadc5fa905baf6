"""Write the sample HW2 submissions (``submissions/hw2/<student>/layers.py``).

Each student is the reference solution (``submissions/hw2/solution/layers.py``) with one
classic mistake put in by a textual edit that must apply exactly once, so the samples
stay in step with the solution. Run from the project root:
``.venv/bin/python tests/golden/make_hw2_samples.py``. Expected grades are written by
hand in ``tests/golden/hw2/<student>.yaml``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HW2 = ROOT / "submissions" / "hw2"
SOLUTION = (HW2 / "solution" / "layers.py").read_text()

# student -> (old, new) edits of the solution
EDITS: dict[str, list[tuple[str, str]]] = {
    # conv backward strips the padding with [pad:-pad], empty when pad = 0
    "pad_zero_slice": [
        (
            "    dx = dxp[:, :, pad : pad + h, pad : pad + wd]\n",
            "    dx = dxp[:, :, pad:-pad, pad:-pad]\n",
        )
    ],
    # overlapping max-pool windows overwrite each other's gradient instead of adding up
    "pool_assign_not_add": [
        (
            "            dx[:, :, i * s : i * s + ph, j * s : j * s + pw] += mask",
            "            dx[:, :, i * s : i * s + ph, j * s : j * s + pw] = mask",
        )
    ],
    # eps added outside the square root
    "bn_sqrt_var_plus_eps": [
        ("        std = np.sqrt(var + eps)\n", "        std = np.sqrt(var) + eps\n")
    ],
    # running statistics computed but never written back into bn_param
    "bn_no_writeback": [
        (
            '    bn_param["running_mean"] = running_mean\n'
            '    bn_param["running_var"] = running_var\n',
            "",
        )
    ],
    # affine backward returns dx flattened to (N, D)
    "dx_not_reshaped": [("    dx = (dout @ w.T).reshape(x.shape)\n", "    dx = dout @ w.T\n")],
    # softmax without subtracting the maximum score: overflows on large scores
    "softmax_no_max_shift": [
        (
            "    shifted = x - x.max(axis=1, keepdims=True)\n",
            "    shifted = x\n",
        )
    ],
    # p read as the probability of dropping a unit (and scaled by 1 / (1 - p))
    "dropout_p_as_drop": [
        (
            "        mask = (np.random.rand(*x.shape) < p) / p\n",
            "        mask = (np.random.rand(*x.shape) > p) / (1 - p)\n",
        )
    ],
    # ReLU that zeroes the negative entries of its input in place
    "relu_in_place": [
        (
            "    out = np.maximum(0, x)\n    return out, x\n",
            "    x[x < 0] = 0\n    return x, x\n",
        )
    ],
    # relu_backward reuses dout as dx and zeroes it in place, as many students write it
    # (hw2.md says nothing about in-place changes, so this is right)
    "relu_dout_in_place": [
        (
            "    x = cache\n    return dout * (x > 0)\n",
            "    x = cache\n    dx = dout\n    dx[x <= 0] = 0\n    return dx\n",
        )
    ],
    # softmax_loss shifts its input scores in place before exponentiating (also right)
    "softmax_shift_in_place": [
        (
            "    shifted = x - x.max(axis=1, keepdims=True)\n",
            "    x -= x.max(axis=1, keepdims=True)\n    shifted = x\n",
        )
    ],
    # dropout forward forgets the 1/p scale; its backward reuses the same (unscaled) mask,
    # so the backward is right for that forward
    "dropout_no_scale": [
        (
            "        mask = (np.random.rand(*x.shape) < p) / p\n",
            "        mask = np.random.rand(*x.shape) < p\n",
        )
    ],
    # dropout backward divides by p again although the forward's mask already holds 1/p
    "dropout_backward_rescales": [
        (
            "        return dout * mask\n",
            '        return dout * mask / dropout_param["p"]\n',
        )
    ],
    # conv forward computes the output width from the height (W_out = 1 + (H + 2 * pad -
    # HH) // stride, a copy-paste slip seen in real submissions); its backward reads the
    # output size from dout and is right
    "conv_out_h_for_w": [
        (
            "    wo = 1 + (wd + 2 * pad - ww) // stride\n",
            "    wo = 1 + (h + 2 * pad - hh) // stride\n",
        )
    ],
    # conv backward recomputes the output size instead of reading dout's, with the same
    # slip in the width; its forward is right
    "conv_backward_out_h_for_w": [
        (
            "    _, _, ho, wo = dout.shape\n",
            "    ho = 1 + (h + 2 * pad - hh) // stride\n"
            "    wo = 1 + (h + 2 * pad - hh) // stride\n",
        )
    ],
    # max pool forward and backward both take the window's width from pool_height
    "pool_height_for_width": [
        (
            '    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], '
            'pool_param["stride"]\n    n, c, h, w = x.shape\n',
            '    ph, pw, s = pool_param["pool_height"], pool_param["pool_height"], '
            'pool_param["stride"]\n    n, c, h, w = x.shape\n',
        ),
        (
            '    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], '
            'pool_param["stride"]\n    n, c, ho, wo = dout.shape\n',
            '    ph, pw, s = pool_param["pool_height"], pool_param["pool_height"], '
            'pool_param["stride"]\n    n, c, ho, wo = dout.shape\n',
        ),
    ],
    # the last function was never written
    "missing_function": [
        (
            SOLUTION[SOLUTION.index("def max_pool_backward_naive") :],
            "",
        )
    ],
    # a training loop left at module level: importing the module never ends
    "trains_at_import": [
        (
            '"""HW2 layers: forward/backward pairs in plain NumPy (the reference solution)."""\n',
            '"""HW2 layers, with a quick sanity-check training run left at the top."""\n',
        ),
        (
            "\n\ndef affine_forward(x, w, b):",
            "\n\n# sanity check: train a tiny linear model before defining the layers\n"
            "W = np.random.randn(50, 10)\n"
            "for epoch in range(10**12):\n"
            "    W -= 1e-3 * (W @ W.T @ W) / 50\n"
            "\n\ndef affine_forward(x, w, b):",
        ),
    ],
    # a missing colon
    "syntax_error": [("def relu_backward(dout, cache):\n", "def relu_backward(dout, cache)\n")],
}


def main() -> None:
    for student, edits in EDITS.items():
        text = SOLUTION
        for old, new in edits:
            assert text.count(old) == 1, (student, old)
            text = text.replace(old, new)
        folder = HW2 / student
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        (folder / "layers.py").write_text(text)
    # a submission whose file has the wrong name: nothing to import
    folder = HW2 / "misnamed_module"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    (folder / "layer.py").write_text(SOLUTION)
    (folder / "notes.txt").write_text("my layers are in layer.py\n")


if __name__ == "__main__":
    main()
