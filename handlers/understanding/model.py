"""The musicnn network (Pons & Serra, 2019) in PyTorch, loaded from the TF1 checkpoint variables.

Front end: musically motivated convolutions over the log-mel patch — two timbral ones (7 frames
× 38 or 67 mel bands) and three temporal ones (128, 64, 32 frames × 1 band), each
conv → ReLU → batch-norm → max over frequency. Mid end: three 7-frame 1-D convolutions with
residual connections. Back end: max and mean over time of everything (interleaved, as TF's
concat-then-flatten lays them out), batch-norm, a 200-unit dense layer (ReLU → batch-norm: the
"penultimate" embedding) and the 50 tag logits. Matches the TF graph to float32 rounding.

TF names variables by creation order (`conv2d`, `conv2d_1`, …); the order below is the one in
musicnn's `models.build_musicnn`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn
from torch.nn import functional

BN_EPS = 1e-3  # tf.compat.v1.layers.batch_normalization's default
TIMBRAL = ((7, 38), (7, 67))  # (frames, mel bands): int(0.4 * 96), int(0.7 * 96)
TEMPORAL = (128, 64, 32)  # frames
MIDEND_LAYERS = 3

Weights = dict[str, npt.NDArray[np.float32]]


def _fold_signs(conv: nn.Conv2d, bn: nn.BatchNorm1d) -> tuple[Tensor, Tensor, Tensor]:
    """Negate the filters whose batch-norm scale is negative; return (sign, scale, shift), each
    shaped [channels, 1] to broadcast over time."""
    assert bn.running_mean is not None
    assert bn.running_var is not None
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias - bn.running_mean * scale
        sign = torch.where(scale < 0, -1.0, 1.0)
        conv.weight.mul_(sign[:, None, None, None])
        assert conv.bias is not None
        conv.bias.mul_(sign)
    return sign[:, None], scale[:, None], shift[:, None]


def _tf_name(kind: str, index: int) -> str:
    return kind if index == 0 else f"{kind}_{index}"


class _Loader:
    """Hands out the checkpoint's variables in creation order, checking every shape."""

    def __init__(self, weights: Weights) -> None:
        self.weights = weights
        self.counts = {"conv2d": 0, "batch_normalization": 0, "dense": 0}
        self.used: set[str] = set()

    def _take(self, kind: str) -> str:
        name = _tf_name(kind, self.counts[kind])
        self.counts[kind] += 1
        return name

    def _get(self, name: str, shape: tuple[int, ...]) -> Tensor:
        if name not in self.weights:
            raise ValueError(f"checkpoint has no variable {name}")
        value = self.weights[name]
        if value.shape != shape:
            raise ValueError(f"{name}: shape {value.shape}, expected {shape}")
        self.used.add(name)
        return torch.from_numpy(np.ascontiguousarray(value))

    def batch_norm(self, channels: int) -> nn.BatchNorm1d:
        name = self._take("batch_normalization")
        layer = nn.BatchNorm1d(channels, eps=BN_EPS)
        with torch.no_grad():
            layer.weight.copy_(self._get(f"{name}/gamma", (channels,)))
            layer.bias.copy_(self._get(f"{name}/beta", (channels,)))
            assert layer.running_mean is not None
            assert layer.running_var is not None
            layer.running_mean.copy_(self._get(f"{name}/moving_mean", (channels,)))
            layer.running_var.copy_(self._get(f"{name}/moving_variance", (channels,)))
        return layer

    def conv2d(self, kernel: tuple[int, int], in_ch: int, out_ch: int) -> nn.Conv2d:
        name = self._take("conv2d")
        layer = nn.Conv2d(in_ch, out_ch, kernel)
        tf_kernel = self._get(f"{name}/kernel", (*kernel, in_ch, out_ch))
        assert layer.bias is not None
        with torch.no_grad():
            layer.weight.copy_(tf_kernel.permute(3, 2, 0, 1))  # [kh, kw, in, out] → [out, in, ...]
            layer.bias.copy_(self._get(f"{name}/bias", (out_ch,)))
        return layer

    def conv1d_over_features(self, frames: int, features: int, out_ch: int) -> nn.Conv1d:
        """A TF conv2d whose kernel spans the whole feature axis is a 1-D conv over time."""
        name = self._take("conv2d")
        layer = nn.Conv1d(features, out_ch, frames)
        tf_kernel = self._get(f"{name}/kernel", (frames, features, 1, out_ch))
        assert layer.bias is not None
        with torch.no_grad():
            layer.weight.copy_(tf_kernel[:, :, 0, :].permute(2, 1, 0))  # → [out, features, frames]
            layer.bias.copy_(self._get(f"{name}/bias", (out_ch,)))
        return layer

    def dense(self, units_in: int, units_out: int) -> nn.Linear:
        name = self._take("dense")
        layer = nn.Linear(units_in, units_out)
        with torch.no_grad():
            layer.weight.copy_(self._get(f"{name}/kernel", (units_in, units_out)).T)
            layer.bias.copy_(self._get(f"{name}/bias", (units_out,)))
        return layer


class Musicnn(nn.Module):
    """musicnn with 1.6× front-end filters, 64 mid-end filters and a 200-unit back end."""

    def __init__(self, weights: Weights, n_mels: int = 96, n_tags: int = 50) -> None:
        super().__init__()
        load = _Loader(weights)
        self.input_bn = load.batch_norm(1)
        timbral_filters, temporal_filters = int(1.6 * 128), int(1.6 * 32)
        self.timbral = nn.ModuleList()
        self.timbral_norm: list[tuple[Tensor, Tensor, Tensor]] = []
        for kernel in TIMBRAL:
            conv = load.conv2d(kernel, 1, timbral_filters)
            self.timbral.append(conv)
            self.timbral_norm.append(_fold_signs(conv, load.batch_norm(timbral_filters)))
        self.temporal = nn.ModuleList()
        self.temporal_norm: list[tuple[Tensor, Tensor, Tensor]] = []
        for frames in TEMPORAL:
            conv = load.conv2d((frames, 1), 1, temporal_filters)
            self.temporal.append(conv)
            self.temporal_norm.append(_fold_signs(conv, load.batch_norm(temporal_filters)))
        front = len(TIMBRAL) * timbral_filters + len(TEMPORAL) * temporal_filters
        self.midend = nn.ModuleList()
        self.midend_bn = nn.ModuleList()
        width = front
        for _ in range(MIDEND_LAYERS):
            self.midend.append(load.conv1d_over_features(7, width, 64))
            self.midend_bn.append(load.batch_norm(64))
            width = 64
        pooled = 2 * (front + MIDEND_LAYERS * 64)
        self.pool_bn = load.batch_norm(pooled)
        self.dense = load.dense(pooled, 200)
        self.dense_bn = load.batch_norm(200)
        self.logits = load.dense(200, n_tags)
        unused = set(weights) - load.used
        if unused:
            raise ValueError(f"checkpoint variables not used by the model: {sorted(unused)}")
        self.eval()

    @staticmethod
    def _block(conv: nn.Module, norm: tuple[Tensor, Tensor, Tensor], x: Tensor) -> Tensor:
        """conv → ReLU → batch-norm → max over frequency, without normalising the whole map.

        ReLU and the per-channel affine batch-norm are monotonic: the maximum of the result is
        the transformed maximum of the conv output where the scale is positive, its minimum
        where negative. The conv of a negative-scale channel was built negated (see
        `_fold_signs`), so one max serves both: sign · max(sign · conv) is that extreme.
        """
        sign, scale, shift = norm
        extreme = conv(x).amax(dim=3) * sign
        return functional.relu(extreme) * scale + shift

    def forward(self, patches: Tensor) -> tuple[Tensor, Tensor]:
        """[batch, frames, mels] log-mel → (tag probabilities [batch, 50], penultimate
        [batch, 200])."""
        batch, frames, bands = patches.shape
        x = self.input_bn(patches.reshape(batch, 1, frames * bands)).reshape(
            batch, 1, frames, bands
        )
        maps: list[Tensor] = []
        padded = functional.pad(x, (0, 0, 3, 3))  # time only: the timbral kernels are 7 frames
        for conv, norm in zip(self.timbral, self.timbral_norm, strict=True):
            maps.append(self._block(conv, norm, padded))
        for conv, norm, length in zip(self.temporal, self.temporal_norm, TEMPORAL, strict=True):
            before = (length - 1) // 2  # TF "SAME": the extra frame of padding goes after
            maps.append(
                self._block(conv, norm, functional.pad(x, (0, 0, before, length - 1 - before)))
            )
        front = torch.cat(maps, dim=1)  # [batch, 561, frames]
        features = [front]
        hidden = front
        for index, (conv, bn) in enumerate(zip(self.midend, self.midend_bn, strict=True)):
            out = bn(functional.relu(conv(functional.pad(hidden, (3, 3)))))
            hidden = out if index == 0 else out + hidden
            features.append(hidden)
        stacked = torch.cat(features, dim=1)  # [batch, 753, frames]
        pooled = torch.stack((stacked.amax(dim=2), stacked.mean(dim=2)), dim=2).flatten(1)
        penultimate = self.dense_bn(functional.relu(self.dense(self.pool_bn(pooled))))
        return torch.sigmoid(self.logits(penultimate)), penultimate
