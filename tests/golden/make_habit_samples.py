# mypy: disable-error-code="no-untyped-call"
"""Generate the HW3 sample written for a Colab GPU (issue 14, items 1 and 3).

Run from anywhere: ``python tests/golden/make_habit_samples.py``. The student is the
solution (``submissions/hw3/solution``) as a student who trained on Colab hands it in:
a ``drive.mount`` preamble, ``!pip install``, ``%cd`` into their Drive folder,
``device = torch.device('cuda')``, tensors created on the device, models moved there
(``.to(device)``, ``.cuda()``), cuDNN flags, autocast and a ``GradScaler``, and answers
read back with ``.cpu()``. Its expected grade is written by hand in
``tests/golden/hw3/colab_gpu.yaml``. Only ``submissions/hw3/colab_gpu`` is replaced.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell

ROOT = Path(__file__).resolve().parents[2]
SOLUTION = ROOT / "submissions" / "hw3" / "solution" / "hw3.ipynb"
OUT = ROOT / "submissions" / "hw3" / "colab_gpu"

PREAMBLE = """
from google.colab import drive
drive.mount('/content/drive')
!pip install -q torch numpy
%cd /content/drive/MyDrive/DL/hw3
device = torch.device('cuda')
torch.cuda.manual_seed_all(0)
torch.backends.cudnn.benchmark = True
print(torch.cuda.is_available(), device)
"""

# (text in the solution's cell, its Colab-GPU form); every occurrence in that cell (the
# first edit makes both X and F of Q2 on the device)
EDITS = [
    (
        "dtype=torch.float64, requires_grad=True)\n",
        "dtype=torch.float64, requires_grad=True, device=device)\n",
    ),
    ("q2_O = O.detach().numpy()", "q2_O = O.detach().cpu().numpy()"),
    ("q2_dL_dX = X.grad.numpy()", "q2_dL_dX = X.grad.cpu().numpy()"),
    ("q2_dL_dF = F.grad.numpy()", "q2_dL_dF = F.grad.cpu().numpy()"),
    (
        "q4_model = Q4Net()\n",
        "q4_model = Q4Net().to(device)\nscaler = torch.cuda.amp.GradScaler()\n",
    ),
    (
        "probs = q4_model(torch.rand(2, 1, 256, 256) * 255)",
        "with torch.autocast(device_type='cuda'):\n"
        "        probs = q4_model(torch.rand(2, 1, 256, 256, device=device) * 255)",
    ),
    ("q7_model = Q7Net()\n", "q7_model = Q7Net().cuda()\n"),
    (
        "print(q7_model(torch.rand(2, 3, 32, 32)).shape)",
        "print(q7_model(torch.rand(2, 3, 32, 32).to(device)).shape)",
    ),
]  # fmt: skip


def build() -> None:
    """Write ``submissions/hw3/colab_gpu/hw3.ipynb`` from the solution."""
    nb = nbformat.read(SOLUTION, as_version=4)
    out = copy.deepcopy(nb)
    done = set()
    for cell in out.cells:
        if cell.cell_type != "code":
            continue
        for i, (old, new) in enumerate(EDITS):
            if old in cell.source and (i not in done):
                cell.source = cell.source.replace(old, new)
                done.add(i)
    missing = [EDITS[i][0] for i in range(len(EDITS)) if i not in done]
    assert not missing, f"the solution changed: {missing}"
    imports = next(i for i, c in enumerate(out.cells) if "import torch" in c.source)
    pre = new_code_cell(PREAMBLE.strip("\n"))
    pre.id = "colab-gpu-preamble"
    out.cells.insert(imports + 1, pre)
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    nbformat.write(out, OUT / "hw3.ipynb")


if __name__ == "__main__":
    build()
