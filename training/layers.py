"""A small numpy network library whose weight layers can live on analog tiles.

Layers share one interface: ``forward(x)`` caches what the backward pass needs and
returns the output; ``backward(grad_out, input_grad=True)`` sets the parameter
gradients and returns the gradient with respect to the input (``None`` when
``input_grad`` is False: the first layer of a network needs no input gradient, and
on a chip that saves a transposed MVM). ``params`` and ``grads`` map names to the
arrays an optimiser updates in place.

:class:`Linear` keeps float32 weights in memory; :class:`AnalogLinear` computes its
products on an :class:`~xbarlab.chipdrivers.tiles.AnalogTile` (forward ``X @ W.T``,
backward ``D @ W`` through the transposed MVM) and computes only its weight gradient
digitally, so a trainer decides how the chip's weights change. Activations, biases
and the loss stay digital. Models save to ``.npz`` (no pickle) with a JSON
description of the architecture.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from xbarlab.errors import ConfigError

#: version of the saved-model layout
MODEL_FORMAT = 1


class Linear:
    """Fully connected layer y = x @ W.T + b with float32 weights W (out, in) and bias b.

    Weights start He-normal (std sqrt(2 / n_in), suited to ReLU), the bias at zero.
    rng: numpy Generator the initial weights are drawn from.
    """

    kind = "Linear"

    def __init__(self, n_in: int, n_out: int, rng: np.random.Generator):
        if int(n_in) < 1 or int(n_out) < 1:
            raise ConfigError(f"Linear needs n_in, n_out >= 1, got {n_in!r}, {n_out!r}")
        std = np.sqrt(2.0 / n_in)
        self.W = (rng.standard_normal((int(n_out), int(n_in))) * std).astype(np.float32)
        self.b = np.zeros(int(n_out), dtype=np.float32)
        self.grad_W = np.zeros_like(self.W)
        self.grad_b = np.zeros_like(self.b)
        self._x: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """(out, in)."""
        return self.W.shape

    @property
    def params(self) -> dict[str, np.ndarray]:
        return {"W": self.W, "b": self.b}

    @property
    def grads(self) -> dict[str, np.ndarray]:
        return {"W": self.grad_W, "b": self.grad_b}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        return x @ self.W.T + self.b

    def backward(self, grad_out: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        x = _cached(self._x, self.kind)
        self.grad_W = (grad_out.T @ x).astype(np.float32)
        self.grad_b = grad_out.sum(axis=0).astype(np.float32)
        return grad_out @ self.W if input_grad else None

    def weights(self) -> np.ndarray:
        """The weights (out, in) the layer computes with."""
        return self.W

    def describe(self) -> dict:
        return {"type": self.kind, "n_in": self.shape[1], "n_out": self.shape[0]}


class AnalogLinear:
    """Fully connected layer whose products run on an AnalogTile; the bias stays digital.

    forward: ``tile.forward(x) + b``; backward: ``tile.backward(grad_out)`` (the
    transposed MVM) for the input gradient, and grad_W = grad_out.T @ x computed
    digitally from the cached input (for the trainer to turn into pulses). The layer
    holds no copy of the weights: they are on the devices.

    Parameters
    ----------
    tile : AnalogTile
        A programmed tile holding W (out, in).
    bias : array_like, optional
        Bias (out,), weight units of the output; zeros by default.

    Attributes
    ----------
    gain : float
        Digital factor applied to the tile's products before the bias, 1 by default;
        global drift compensation sets it to undo the drift of the whole tile.
    """

    kind = "Linear"  # saved as a digital Linear holding the weights read from the chip

    def __init__(self, tile, bias=None):
        if tile.shape is None:
            raise ConfigError("AnalogLinear needs a programmed tile: call tile.program(W) first")
        self.tile = tile
        n_out = tile.shape[0]
        b = np.zeros(n_out) if bias is None else np.asarray(bias)
        if b.shape != (n_out,):
            raise ConfigError(f"bias must have shape ({n_out},), got {b.shape}")
        self.b = b.astype(np.float32)
        self.gain = 1.0
        self.grad_W = np.zeros(tile.shape, dtype=np.float32)
        self.grad_b = np.zeros_like(self.b)
        self._x: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """(out, in)."""
        return self.tile.shape

    @property
    def params(self) -> dict[str, np.ndarray]:
        return {"b": self.b}

    @property
    def grads(self) -> dict[str, np.ndarray]:
        return {"b": self.grad_b}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        y = self.tile.forward(x)
        return (y if self.gain == 1.0 else y * np.float32(self.gain)) + self.b

    def backward(self, grad_out: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        x = _cached(self._x, "AnalogLinear")
        self.grad_W = (grad_out.T @ x).astype(np.float32)
        self.grad_b = grad_out.sum(axis=0).astype(np.float32)
        if not input_grad:
            return None
        g = self.tile.backward(grad_out)
        return g if self.gain == 1.0 else g * np.float32(self.gain)

    def weights(self) -> np.ndarray:
        """The weights (out, in) the layer computes with: a conductance read times gain."""
        return (self.tile.read_weights() * self.gain).astype(np.float32)

    def describe(self) -> dict:
        return {"type": self.kind, "n_in": self.shape[1], "n_out": self.shape[0]}


class ReLU:
    """max(x, 0)."""

    kind = "ReLU"
    params: dict[str, np.ndarray] = {}
    grads: dict[str, np.ndarray] = {}

    def __init__(self):
        self._mask: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._mask = x > 0
        return np.where(self._mask, x, 0).astype(x.dtype)

    def backward(self, grad_out: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        mask = _cached(self._mask, self.kind)
        return np.where(mask, grad_out, 0).astype(grad_out.dtype) if input_grad else None

    def describe(self) -> dict:
        return {"type": self.kind}


class Quantize:
    """Activation quantisation to ``levels`` equally spaced values in [lo, hi].

    Values are clipped to [lo, hi] and rounded to the nearest level. The gradient is
    straight-through inside [lo, hi] and zero outside (where the output is clipped).
    Seed 000 uses 7-level activations: ``Quantize(7, 0.0, hi)`` after a ReLU.

    levels: >= 2; lo < hi (activation units).
    """

    kind = "Quantize"
    params: dict[str, np.ndarray] = {}
    grads: dict[str, np.ndarray] = {}

    def __init__(self, levels: int = 7, lo: float = 0.0, hi: float = 1.0):
        if int(levels) != levels or levels < 2:
            raise ConfigError(f"levels must be an integer >= 2, got {levels!r}")
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ConfigError(f"need finite lo < hi, got lo={lo!r}, hi={hi!r}")
        self.levels, self.lo, self.hi = int(levels), float(lo), float(hi)
        self._inside: np.ndarray | None = None

    @property
    def step(self) -> float:
        return (self.hi - self.lo) / (self.levels - 1)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._inside = (x >= self.lo) & (x <= self.hi)
        q = np.round((np.clip(x, self.lo, self.hi) - self.lo) / self.step)
        return (self.lo + q * self.step).astype(x.dtype)

    def backward(self, grad_out: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        inside = _cached(self._inside, self.kind)
        return np.where(inside, grad_out, 0).astype(grad_out.dtype) if input_grad else None

    def describe(self) -> dict:
        return {"type": self.kind, "levels": self.levels, "lo": self.lo, "hi": self.hi}


class SoftmaxCrossEntropy:
    """Mean softmax cross-entropy over a batch, and its gradient with respect to the logits."""

    def __init__(self):
        self._p: np.ndarray | None = None
        self._y: np.ndarray | None = None

    def forward(self, logits: np.ndarray, y: np.ndarray) -> float:
        """Mean loss in nats; logits (n, classes), y (n,) integer labels."""
        z = logits.astype(np.float64)
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        self._p, self._y = np.exp(log_p), np.asarray(y)
        return float(-log_p[np.arange(len(y)), self._y].mean())

    def backward(self) -> np.ndarray:
        """d(mean loss)/d(logits), float32 (n, classes)."""
        p = _cached(self._p, "SoftmaxCrossEntropy").copy()
        p[np.arange(len(self._y)), self._y] -= 1.0
        return (p / len(self._y)).astype(np.float32)


class Sequential:
    """Layers applied in order; forward, backward, predict, accuracy, save and load."""

    def __init__(self, layers: list):
        self.layers = list(layers)
        if not self.layers:
            raise ConfigError("Sequential needs at least one layer")

    @property
    def weight_layers(self) -> list:
        """The Linear / AnalogLinear layers, input side first."""
        return [layer for layer in self.layers if hasattr(layer, "grad_W")]

    def forward(self, x) -> np.ndarray:
        h = np.asarray(x, dtype=np.float32)
        for layer in self.layers:
            h = layer.forward(h)
        return h

    def backward(self, grad_out: np.ndarray) -> None:
        """Back-propagate d(loss)/d(output); sets every layer's gradients.

        The first layer's input gradient is not computed (nothing needs it).
        """
        g = grad_out
        for k in range(len(self.layers) - 1, -1, -1):
            g = self.layers[k].backward(g, input_grad=k > 0)

    def predict(self, x) -> np.ndarray:
        """Class labels (n,), the argmax of the outputs."""
        return np.argmax(self.forward(x), axis=1)

    def accuracy(self, x, y) -> float:
        """Fraction of samples whose predicted label equals y."""
        return float(np.mean(self.predict(x) == np.asarray(y)))

    def describe(self) -> list[dict]:
        return [layer.describe() for layer in self.layers]

    def save(self, path) -> None:
        """Write the model to ``path`` (.npz, no pickle): architecture JSON plus arrays.

        Analog layers are saved as digital Linear layers holding the weights read from
        the chip now, so a saved model can be reloaded, inspected or programmed again.
        """
        arrays = {}
        for k, layer in enumerate(self.layers):
            if hasattr(layer, "grad_W"):
                arrays[f"{k}.W"], arrays[f"{k}.b"] = layer.weights(), layer.b
        meta = {"format": MODEL_FORMAT, "layers": self.describe()}
        blob = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        with open(Path(path), "wb") as f:
            np.savez(f, architecture=blob, **arrays)

    @classmethod
    def load(cls, path) -> Sequential:
        """A digital model from a file written by :meth:`save`."""
        try:
            with np.load(Path(path), allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            meta = json.loads(arrays.pop("architecture").tobytes().decode())
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise ConfigError(f"{str(path)!r} is not a saved xbarlab model ({exc})") from None
        if meta.get("format") != MODEL_FORMAT:
            raise ConfigError(
                f"model format {meta.get('format')!r} in {str(path)!r}; this version reads "
                f"format {MODEL_FORMAT}"
            )
        try:
            return cls([_layer_from(d, k, arrays) for k, d in enumerate(meta["layers"])])
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"{str(path)!r}: incomplete model description ({exc})") from None


class MLP(Sequential):
    """Linear-ReLU stack of layer widths ``sizes`` (inputs first, classes last).

    activation_levels: if given, each hidden ReLU is followed by
    ``Quantize(activation_levels, 0, activation_max)`` (seed 000: 7 levels).
    """

    def __init__(
        self,
        sizes,
        rng: np.random.Generator,
        *,
        activation_levels: int | None = None,
        activation_max: float = 1.0,
    ):
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2:
            raise ConfigError(f"an MLP needs at least input and output sizes, got {sizes}")
        layers: list = []
        for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            layers.append(Linear(n_in, n_out, rng))
            if k < len(sizes) - 2:
                layers.append(ReLU())
                if activation_levels is not None:
                    layers.append(Quantize(activation_levels, 0.0, activation_max))
        super().__init__(layers)
        self.sizes = sizes


def _layer_from(d: dict, k: int, arrays: dict[str, np.ndarray]):
    kind = d.get("type")
    if kind == "Linear":
        layer = Linear(d["n_in"], d["n_out"], np.random.default_rng(0))
        w, b = arrays[f"{k}.W"], arrays[f"{k}.b"]
        if w.shape != layer.W.shape or b.shape != layer.b.shape:
            raise ConfigError(f"layer {k}: saved arrays {w.shape}, {b.shape} do not fit {d}")
        layer.W[...], layer.b[...] = w, b
        return layer
    if kind == "ReLU":
        return ReLU()
    if kind == "Quantize":
        return Quantize(d["levels"], d["lo"], d["hi"])
    raise ConfigError(f"layer {k}: unknown layer type {kind!r} (Linear, ReLU, Quantize)")


def _cached(value, name: str):
    if value is None:
        raise ConfigError(f"{name}.backward called before forward")
    return value
