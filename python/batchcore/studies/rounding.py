"""How far rounding alone can move a network's outputs: a first-order forward error bound per output.

For a chain of layers (an ``nn.Sequential``, nested ones flattened) the bound is carried through the
network in float64 as two non-negative arrays per sample: ``A``, a bound on the magnitude of every value
(the network run on ``|x|`` with ``|W|``, ``|b|``), and ``E``, a bound on its rounding error. With ``u`` the
unit roundoff of the format and ``g(n) = n u / (1 - n u)`` (Higham's gamma):

- linear or convolution with K terms per output: ``A' = |W| A + |b|``, ``E' = |W| E + g(K + 1) A'`` (any
  order of the K products and the bias, fused or not, is within ``g(K + 1)`` of the exact sum of magnitudes);
- batch norm in eval mode, ``y = s (x - m) + b`` with ``s = w / sqrt(v + eps)``: ``A' = |s| (A + |m|) + |b|``,
  ``E' = |s| E + g(4) A'``;
- ReLU, max pooling, flatten, dropout (eval), identity: applied to A and to E (each is 1-Lipschitz and
  monotone on magnitudes); average pooling: ``E' = avg(E) + g(k + 1) A'`` for k values averaged;
- GELU, SiLU, tanh: ``A' = A`` (|f(z)| <= |z|), ``E' = L E + 4 u A`` (L = 1.13, 1.10, 1: their largest slope;
  4 u for torch's own rounding of the function).

Second-order terms (errors of errors) are left out, as in the textbook bounds. Two evaluations of one
output (batch size B and batch size 1, in whatever orders) then differ by at most ``2 E``. A layer not
listed, or a module that is not a chain, has no bound here: :func:`forward_error_bound` says so instead
of guessing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

UNIT_ROUNDOFF = {"fp32": 2.0 ** -24, "bf16": 2.0 ** -8, "fp16": 2.0 ** -11}
LIPSCHITZ = {"GELU": 1.13, "SiLU": 1.10, "Tanh": 1.0}


def gamma(n: int, u: float) -> float:
    """Higham's gamma_n = n u / (1 - n u): the relative error bound of n roundings."""
    if n * u >= 1:
        return float("inf")
    return n * u / (1 - n * u)


def _chain(module: Any) -> list[Any] | str:
    """The module's layers in order (nested Sequentials flattened), or why it is not a chain."""
    import torch

    if not isinstance(module, torch.nn.Sequential):
        return f"{type(module).__name__} is not an nn.Sequential (a custom forward's data flow is not read here)"
    layers: list[Any] = []
    for child in module:
        inner = _chain(child) if isinstance(child, torch.nn.Sequential) else [child]
        if isinstance(inner, str):
            return inner
        layers += inner
    return layers


def _magnitude(t: Any, shape: tuple[int, ...]) -> Any:
    """|t| in float64, shaped to broadcast (0 for an absent bias)."""
    return 0.0 if t is None else t.detach().double().abs().reshape(shape)


def _step(layer: Any, A: Any, E: Any, u: float) -> tuple[Any, Any] | str:
    """(A', E') after one layer (float64 tensors), or why this layer has no bound here."""
    import torch
    from torch.nn import functional as F

    nn = torch.nn
    name = type(layer).__name__
    if isinstance(layer, (nn.ReLU, nn.Flatten, nn.Dropout, nn.Identity, nn.MaxPool2d)):
        return (A, E) if not isinstance(layer, (nn.Flatten, nn.MaxPool2d)) else (layer(A), layer(E))
    if isinstance(layer, nn.Linear):
        W = layer.weight.detach().double().abs()
        A2 = A @ W.T + _magnitude(layer.bias, (1, -1))
        return A2, E @ W.T + gamma(layer.in_features + 1, u) * A2
    if isinstance(layer, nn.Conv2d):
        if layer.padding_mode != "zeros" or isinstance(layer.padding, str):
            return f"{name} with padding {layer.padding!r}, mode {layer.padding_mode!r}"
        W = layer.weight.detach().double().abs()
        A2 = F.conv2d(A, W, None, layer.stride, layer.padding, layer.dilation, layer.groups)
        A2 = A2 + _magnitude(layer.bias, (1, -1, 1, 1))
        K = W.shape[1] * W.shape[2] * W.shape[3]
        return A2, F.conv2d(E, W, None, layer.stride, layer.padding, layer.dilation, layer.groups) + gamma(K + 1, u) * A2
    if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
        if layer.training or layer.running_mean is None or layer.running_var is None:
            return f"{name} in training mode (its statistics come from the batch)"
        shape = (1, -1) + (1,) * (A.dim() - 2)
        root = torch.sqrt(layer.running_var.double() + layer.eps).reshape(shape)
        s = (_magnitude(layer.weight, shape) if layer.affine else 1.0) / root
        A2 = s * (A + layer.running_mean.double().abs().reshape(shape)) + _magnitude(layer.bias, shape)
        return A2, s * E + gamma(4, u) * A2
    if isinstance(layer, nn.AvgPool2d):
        k = np.prod(np.broadcast_to(layer.kernel_size, 2))
        A2 = layer(A)
        return A2, layer(E) + gamma(int(k) + 1, u) * A2
    if name in LIPSCHITZ:
        return A, LIPSCHITZ[name] * E + 4 * u * A
    return f"{name} (no rounding bound is derived for it here)"


def forward_error_bound(module: Any, x: Any, fmt: str = "fp32") -> tuple[np.ndarray | None, str]:
    """(E, how): E bounds, to first order, the rounding error of every output of ``module`` on the rows
    of ``x`` (a float tensor, batch first; shape of the output), in the module's format ``fmt`` (fp32,
    bf16, fp16); None, and the reason, when the module is not a chain of the layers listed above."""
    import torch

    layers = _chain(module)
    if isinstance(layers, str):
        return None, layers
    u = UNIT_ROUNDOFF[fmt]
    with torch.no_grad():
        A = x.detach().double().abs()
        E = torch.zeros_like(A)  # the inputs are exact: their rounding to the format, if any, came before
        for layer in layers:
            step = _step(layer, A, E, u)
            if isinstance(step, str):
                return None, step
            A, E = step
    return E.numpy(), f"first-order bound through {len(layers)} layers, u = 2^{int(np.log2(u))}"
