"""One thin wrapper around the TFLite interpreter that hides quantization from callers.

LiteRT (`ai-edge-litert`) is the maintained successor of `tflite-runtime` and is preferred;
`tflite_runtime` is used only when it is what is installed (it needs numpy<2).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from edge_agent.vision.values import Delegate

log = logging.getLogger(__name__)


EDGETPU_LIBRARY = "libedgetpu.so.1"

# Module paths in order of preference; EDGE_AGENT_TFLITE_BACKEND may name one to force it.
BACKENDS: dict[str, str] = {
    "ai_edge_litert": "ai_edge_litert.interpreter",
    "tflite_runtime": "tflite_runtime.interpreter",
}


class RuntimeUnavailableError(RuntimeError):
    """No TFLite interpreter could be imported."""


class DelegateUnavailableError(RuntimeError):
    """A hardware delegate (Edge TPU) or the model compiled for it is missing."""


@dataclass(frozen=True, slots=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0


def load_backend(preferred: str | None = None) -> tuple[str, ModuleType]:
    """Import the first TFLite interpreter module that works; name which one it was."""
    preferred = preferred or os.environ.get("EDGE_AGENT_TFLITE_BACKEND") or None
    if preferred is not None and preferred not in BACKENDS:
        raise RuntimeUnavailableError(
            f"unknown TFLite backend {preferred!r}; choose one of {', '.join(BACKENDS)}"
        )
    names = [preferred] if preferred else list(BACKENDS)
    failures: list[str] = []
    for name in names:
        try:
            return name, importlib.import_module(BACKENDS[name])
        except Exception as error:
            failures.append(f"{name}: {type(error).__name__}: {error}")
    raise RuntimeUnavailableError(
        "no TFLite interpreter could be imported ("
        + "; ".join(failures)
        + "). Install `ai-edge-litert` (recommended), or `tflite-runtime` with numpy<2."
    )


def edgetpu_model_path(path: Path) -> Path:
    """The Edge TPU compiled twin of a model: `name.tflite` -> `name_edgetpu.tflite`."""
    if path.stem.endswith("_edgetpu"):
        return path
    return path.with_name(f"{path.stem}_edgetpu{path.suffix}")


class TfliteModel:
    """A loaded model that takes and returns plain float (or uint8 image) arrays.

    One instance belongs to one thread: the interpreter is not thread-safe, although
    `invoke()` releases the GIL so several models can run in parallel threads.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        num_threads: int = 1,
        delegate: Delegate = "cpu",
        backend: str | None = None,
    ) -> None:
        self.backend_name, module = load_backend(backend)
        path = Path(path)
        delegates: list[Any] = []
        if delegate == "edgetpu":
            path = edgetpu_model_path(path)
            delegates.append(_load_edgetpu_delegate(module.load_delegate))
        elif delegate != "cpu":
            raise DelegateUnavailableError(f"unknown delegate {delegate!r}; use cpu or edgetpu")
        if not path.is_file():
            hint = " (compile it with edgetpu_compiler)" if delegate == "edgetpu" else ""
            raise FileNotFoundError(f"model file not found: {path}{hint}")
        self.path = path
        self.delegate = delegate
        self._interpreter = module.Interpreter(
            model_path=str(path),
            num_threads=num_threads,
            experimental_delegates=delegates or None,
        )
        self._interpreter.allocate_tensors()
        inputs = self._interpreter.get_input_details()
        if len(inputs) != 1:
            raise ValueError(f"{path.name}: expected one input tensor, found {len(inputs)}")
        self.input = _spec(inputs[0])
        self._input_index = inputs[0]["index"]
        outputs = self._interpreter.get_output_details()
        self.outputs = tuple(_spec(detail) for detail in outputs)
        self._output_indices = tuple(detail["index"] for detail in outputs)

    def __repr__(self) -> str:
        return f"TfliteModel({self.path.name}, backend={self.backend_name}, {self.delegate})"

    def resize_input(self, shape: tuple[int, ...]) -> None:
        """Give a model with flexible dimensions (a -1 in its signature) this input shape."""
        if shape == self.input.shape:
            return
        self._interpreter.resize_tensor_input(self._input_index, list(shape), strict=True)
        self._interpreter.allocate_tensors()
        self.input = _spec(self._interpreter.get_input_details()[0])
        self.outputs = tuple(_spec(detail) for detail in self._interpreter.get_output_details())

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        """Invoke on one input; outputs come back as float32 in the model's output order."""
        return tuple(
            dequantize(values, spec)
            for values, spec in zip(self.run_raw(batch), self.outputs, strict=True)
        )

    def run_raw(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        """Invoke on one input; outputs as the model stores them (see `outputs` for their
        quantization): for a caller that needs only a few of their values in float."""
        self._interpreter.set_tensor(self._input_index, self._to_input(batch))
        self._interpreter.invoke()
        return tuple(self._interpreter.get_tensor(index) for index in self._output_indices)

    def output_by_last_dim(self, size: int) -> int:
        """Position of the output whose last dimension is `size` (names differ between builds)."""
        matches = [i for i, spec in enumerate(self.outputs) if spec.shape[-1] == size]
        if len(matches) != 1:
            shapes = [spec.shape for spec in self.outputs]
            raise ValueError(f"{self.path.name}: no unique output with last dim {size}: {shapes}")
        return matches[0]

    def _to_input(self, batch: np.ndarray) -> np.ndarray:
        spec = self.input
        if tuple(batch.shape) != spec.shape:
            raise ValueError(f"{self.path.name}: input shape {batch.shape}, expected {spec.shape}")
        if batch.dtype == spec.dtype:
            return batch
        if not spec.quantized:
            return batch.astype(spec.dtype)
        if (
            batch.dtype == np.uint8
            and spec.dtype == np.int8
            and (spec.scale, spec.zero_point) == (1.0, -128)
        ):
            # An int8 model that takes pixels as value - 128 (YuNet's): flip the top bit, which
            # is that subtraction, without a float copy of a whole frame.
            return (batch ^ np.uint8(0x80)).view(np.int8)
        # The int8 attribute models take the uint8 chip with scale 1 / zero point 0, so
        # this branch only runs for models built differently.
        info = np.iinfo(spec.dtype)
        quantized = np.round(batch.astype(np.float32) / spec.scale) + spec.zero_point
        return np.clip(quantized, info.min, info.max).astype(spec.dtype)


def _spec(detail: dict[str, Any]) -> TensorSpec:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return TensorSpec(
        name=str(detail["name"]),
        shape=tuple(int(d) for d in detail["shape"]),
        dtype=np.dtype(detail["dtype"]),
        scale=float(scale),
        zero_point=int(zero_point),
    )


def dequantize(values: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """An output tensor's values (or some of them) as float32."""
    if not spec.quantized:
        return values.astype(np.float32, copy=True)
    return (values.astype(np.float32) - spec.zero_point) * np.float32(spec.scale)


def _load_edgetpu_delegate(load_delegate: Callable[[str], Any]) -> Any:
    try:
        return load_delegate(EDGETPU_LIBRARY)
    except (ValueError, OSError) as error:
        raise DelegateUnavailableError(
            f"the Edge TPU delegate {EDGETPU_LIBRARY} could not be loaded ({error}). "
            "Install the Edge TPU runtime (Debian package libedgetpu1-std from Coral's "
            "repository), check that the Coral device is plugged in and that this user may "
            "access it, or set the delegate to cpu."
        ) from error
