"""HW3 (I wrote it in VS Code and renamed it)."""
import numpy as np
import torch

X = torch.tensor([[3.0, 4.0, 5.0], [2.0, 1.0, -3.0], [4.0, -2.0, 0.0]], requires_grad=True)
F = torch.tensor([[2.0, 0.0], [-3.0, 1.0]], requires_grad=True)
O = torch.nn.functional.conv2d(X[None, None], F[None, None])[0, 0]
G = O.mean()
G.backward()
q2_O = O.detach().numpy()
q2_G = G.item()
q2_dL_dX = X.grad.numpy()
q2_dL_dF = F.grad.numpy()
