"""`fast_memory_format`: the layout rule every job uses for convolutions."""

import torch

from lrnet.runtime.device import fast_memory_format


def test_channels_last_on_cpu_and_under_cuda_mixed_precision_only():
    assert fast_memory_format(torch.device("cpu")) == torch.channels_last
    assert fast_memory_format(torch.device("cpu"), amp=True) == torch.channels_last
    assert fast_memory_format(torch.device("cuda", 0)) == torch.contiguous_format
    assert fast_memory_format(torch.device("cuda", 0), amp=True) == torch.channels_last
    assert fast_memory_format(torch.device("meta")) == torch.contiguous_format
