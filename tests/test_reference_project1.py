"""reference/project1.py: the seed's parameter counts and the locally-connected layer."""

from __future__ import annotations

import torch

from reference import project1


def test_counts_are_the_seeds() -> None:
    values = project1.compute()
    assert values["fc_total_params"] == 109_722
    assert values["lc_total_params"] == 33_177_770
    assert values["cnn_total_params"] == 315_146
    assert [row[2] for row in values["lc_table"][1:6]] == [
        260096,
        24804864,
        6160000,
        1531648,
        381792,
    ]
    assert values["lc_table"][6] == ["Flatten", (3936,), 0]
    assert values["lc_shared_params"] == 171_194


def test_locally_connected_is_a_position_wise_dense_layer() -> None:
    torch.manual_seed(0)
    layer = project1.LocallyConnected1d(2, 3, length=6, kernel_size=3)
    x = torch.randn(4, 2, 6)
    out = layer(x)
    assert out.shape == (4, 3, 4)
    for pos in range(4):
        window = x[:, :, pos : pos + 3].reshape(4, -1)  # (N, C·k), channel-major like unfold
        expected = window @ layer.weight[pos].T + layer.bias[pos]
        torch.testing.assert_close(out[:, :, pos], expected)
