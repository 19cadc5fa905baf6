"""Write the structure test assignment's submissions (run by hand; the output is committed):
``python tests/data/structure/make_samples.py``. Each student hands in ``attention.py``
(q1, q2) and ``encoder.ipynb`` (q3), modelled on the shortcuts a handout forbids."""

from __future__ import annotations

from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
OUT = HERE / "submissions"


def header(body: str) -> str:
    """The imports ``body`` uses."""
    lines = ["import math", ""]
    lines += ["import numpy as np"] if "np." in body else []
    lines += ["import torch"]
    lines += ["import torch.nn.functional as F"] if "F." in body else []
    return "\n".join(lines) + "\n"


SDPA_BY_HAND = '''

def scaled_dot_product_attention(q, k, v):
    """softmax(q k^T / sqrt(d)) v, written out."""
    q, k, v = (torch.from_numpy(a) for a in (q, k, v))
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return (torch.softmax(scores, dim=-1) @ v).numpy()
'''

SDPA_SHORTCUT = '''

def scaled_dot_product_attention(q, k, v):
    """The library's attention: what the handout forbids."""
    q, k, v = (torch.from_numpy(a) for a in (q, k, v))
    return F.scaled_dot_product_attention(q, k, v).numpy()
'''

BACKWARD_BY_HAND = '''

def attention_backward(dout, q, k, v):
    """Gradients of scaled_dot_product_attention with respect to q, k, v, by hand."""
    scale = 1 / math.sqrt(q.shape[-1])
    s = q @ k.transpose(0, 2, 1) * scale
    a = np.exp(s - s.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    dv = a.transpose(0, 2, 1) @ dout
    da = dout @ v.transpose(0, 2, 1)
    ds = a * (da - (da * a).sum(-1, keepdims=True))
    return ds @ k * scale, ds.transpose(0, 2, 1) @ q * scale, dv
'''

BACKWARD_AUTOGRAD = '''

def attention_backward(dout, q, k, v):
    """Autograd does the work: what the handout forbids."""
    q, k, v = (torch.from_numpy(a).requires_grad_() for a in (q, k, v))
    out = F.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1) @ v
    dq, dk, dv = torch.autograd.grad(out, (q, k, v), torch.from_numpy(dout))
    return dq.numpy(), dk.numpy(), dv.numpy()
'''

ENCODER_MHA = '''class EncoderBlock(nn.Module):
    """Self-attention (nn.MultiheadAttention) and a feed-forward net, each with a residual
    connection and a LayerNorm."""

    def __init__(self, d=16, heads=4):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.norm1 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, 32), nn.ReLU(), nn.Linear(32, d))
        self.norm2 = nn.LayerNorm(d)

    def forward(self, x):
        a, _ = self.attn(x, x, x, need_weights=False)
        x = self.norm1(x + a)
        return self.norm2(x + self.ff(x))


torch.manual_seed(0)
encoder = EncoderBlock()
encoder(torch.rand(2, 10, 16)).shape'''

ENCODER_LINEAR = '''class EncoderBlock(nn.Module):
    """Projections named like attention's, but no attention: every token is mixed with
    itself only. The shapes are right."""

    def __init__(self, d=16):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.norm1 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, 32), nn.ReLU(), nn.Linear(32, d))
        self.norm2 = nn.LayerNorm(d)

    def forward(self, x):
        x = self.norm1(x + self.o(self.q(x) * self.k(x) + self.v(x)))
        return self.norm2(x + self.ff(x))


torch.manual_seed(0)
encoder = EncoderBlock()
encoder(torch.rand(2, 10, 16)).shape'''

STUDENTS = {
    "solution": (SDPA_BY_HAND, BACKWARD_BY_HAND, ENCODER_MHA),
    "linear_only": (SDPA_BY_HAND, BACKWARD_BY_HAND, ENCODER_LINEAR),
    "calls_sdpa": (SDPA_SHORTCUT, BACKWARD_BY_HAND, ENCODER_MHA),
    "autograd_backward": (SDPA_BY_HAND, BACKWARD_AUTOGRAD, ENCODER_MHA),
}


def notebook(encoder: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Q3: an encoder block with `nn.MultiheadAttention`"),
        nbformat.v4.new_code_cell("import torch\nfrom torch import nn"),
        nbformat.v4.new_code_cell(encoder),
    ]
    return nb


def main() -> None:
    for student, (sdpa, backward, encoder) in STUDENTS.items():
        folder = OUT / student
        folder.mkdir(parents=True, exist_ok=True)
        body = sdpa + backward
        (folder / "attention.py").write_text(header(body) + body, encoding="utf-8")
        nbformat.write(notebook(encoder), str(folder / "encoder.ipynb"))


if __name__ == "__main__":
    main()
