"""Neural-network building blocks shared by every chapter.

The convolutional encoder and decoder are the ones of World Models (Ha & Schmidhuber 2018)
and PlaNet (Hafner et al. 2019): both use four stride-2 convolutions with 32, 64, 128 and 256
channels (kernel 4) for 64x64 images, and a decoder of four transposed convolutions with
kernels 5, 5, 6, 6. One definition serves the VAE of chapter 2 and the RSSM of chapters 3-6.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

OBS_SHAPE = (3, 64, 64)  # the images the convolutions take: 64x64 RGB, channels first

ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "silu": nn.SiLU, "tanh": nn.Tanh}


def mlp(in_dim: int, out_dim: int, hidden: int = 200, layers: int = 2,
        act: str = "elu", norm: bool = False) -> nn.Sequential:
    """A plain multi-layer perceptron: `layers` hidden layers of width `hidden`; with ``norm``
    each hidden layer is Linear, LayerNorm, activation (DreamerV3's, with ``act="silu"``)."""
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), *([nn.LayerNorm(hidden)] if norm else []),
                 ACTIVATIONS[act]()]
        d = hidden
    mods.append(nn.Linear(d, out_dim))
    return nn.Sequential(*mods)


class ConvEncoder(nn.Module):
    """64x64x3 image -> feature vector of size 1024 * depth / 32 (1024 for depth 32).

    Accepts any leading batch dimensions: (..., 3, 64, 64) -> (..., embed_dim). With
    ``channels_last=True`` the convolutions run on NHWC tensors (a speed option: on CPUs,
    oneDNN's convolutions are faster in that layout; the result is the same).
    """

    def __init__(self, depth: int = 32, act: str = "relu", in_channels: int = 3,
                 channels_last: bool = False):
        super().__init__()
        self.channels_last = channels_last
        A = ACTIVATIONS[act]
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, depth, 4, 2), A(),
            nn.Conv2d(depth, 2 * depth, 4, 2), A(),
            nn.Conv2d(2 * depth, 4 * depth, 4, 2), A(),
            nn.Conv2d(4 * depth, 8 * depth, 4, 2), A(),
            nn.Flatten(),
        )
        self.embed_dim = 8 * depth * 2 * 2

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.shape[-3:] != (self.net[0].in_channels, 64, 64):
            raise ValueError(
                f"ConvEncoder expects images of shape (..., {self.net[0].in_channels}, 64, 64), "
                f"got {tuple(image.shape)}; resize observations to 64x64 with channels first "
                "(wmlib.envs.make(..., size=64) does this)."
            )
        lead = image.shape[:-3]
        x = image.reshape(-1, *image.shape[-3:])
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x).reshape(*lead, self.embed_dim)


class ConvDecoder(nn.Module):
    """Feature vector -> mean of a 64x64x3 image (..., in_dim) -> (..., 3, 64, 64).

    ``channels_last`` as for `ConvEncoder`. With ``first_matmul=True`` (a speed option) the
    first transposed convolution, whose input is 1x1, is computed as the matrix product it
    equals: ``out[c, i, j] = sum_k x_k W[k, c, i, j] + b[c]``, one ``F.linear`` with the same
    weights (measured alone on a 2-core CPU, forward and backward of 2,500 frames in bf16:
    64 ms, against 435 ms for oneDNN's transposed convolution of a 1x1 input).
    """

    def __init__(self, in_dim: int, depth: int = 32, act: str = "relu", out_channels: int = 3,
                 channels_last: bool = False, first_matmul: bool = False):
        super().__init__()
        self.channels_last, self.first_matmul = channels_last, first_matmul
        A = ACTIVATIONS[act]
        self.fc = nn.Linear(in_dim, 32 * depth)
        self.net = nn.Sequential(
            nn.ConvTranspose2d(32 * depth, 4 * depth, 5, 2), A(),
            nn.ConvTranspose2d(4 * depth, 2 * depth, 5, 2), A(),
            nn.ConvTranspose2d(2 * depth, depth, 6, 2), A(),
            nn.ConvTranspose2d(depth, out_channels, 6, 2),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        lead = features.shape[:-1]
        x = self.fc(features.reshape(-1, features.shape[-1]))
        if self.first_matmul:
            first = self.net[0]  # W: [in, out, k, k] -> [out * k * k, in]; b repeated per pixel
            k = first.kernel_size
            x = F.linear(x, first.weight.flatten(1).t(), first.bias.repeat_interleave(k[0] * k[1]))
            x = self.net[1](x.unflatten(-1, (first.out_channels, *k)))
            rest = self.net[2:]
        else:
            x, rest = x.reshape(x.shape[0], -1, 1, 1), self.net
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = rest(x)
        return x.reshape(*lead, *x.shape[1:])
