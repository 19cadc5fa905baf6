import math

import numpy as np
import torch


def scaled_dot_product_attention(q, k, v):
    """softmax(q k^T / sqrt(d)) v, written out."""
    q, k, v = (torch.from_numpy(a) for a in (q, k, v))
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return (torch.softmax(scores, dim=-1) @ v).numpy()


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
