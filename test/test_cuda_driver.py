"""The CUDA driver calls the TensorRT engine makes instead of PyTorch's, without a GPU: a
stand-in ``libcuda`` keeps device memory in host buffers, so copies, buffer reuse, streams and
errors run for real, and a TensorRT stand-in's execution context computes on that memory."""

from __future__ import annotations

import ctypes
import sys

import numpy as np
import pytest
from fake_tensorrt import fake_tensorrt
from test_tensorrt_api import VERSIONS, graph  # noqa: F401  (the small graph fixture)

from seem_ros.engine import tensorrt_engine
from seem_ros.engine.base import EngineError
from seem_ros.engine.cuda_driver import CudaDriver, CudaError, cuda_device_count
from seem_ros.engine.tensorrt_engine import (
    TENSORRT_API,
    BuildOptions,
    TensorRTGraph,
    build_serialized_engine,
)


class FakeLibcuda:
    """The driver calls :mod:`seem_ros.engine.cuda_driver` makes, on host memory."""

    def __init__(self, devices: int = 1) -> None:
        self.devices = devices
        self.memory: dict[int, ctypes.Array] = {}
        self.copies: list[tuple[str, int]] = []
        self.freed: list[int] = []
        self.synchronized = 0

    @staticmethod
    def _set(reference, value) -> int:
        reference._obj.value = value
        return 0

    def cuInit(self, flags):
        return 0

    def cuDeviceGetCount(self, count):
        return self._set(count, self.devices)

    def cuDeviceGet(self, device, ordinal):
        return self._set(device, ordinal) if ordinal < self.devices else 101  # invalid device

    def cuDeviceGetName(self, buffer, length, device):
        buffer.value = b"Stand-in GPU"
        return 0

    def cuDeviceGetAttribute(self, value, attribute, device):
        return self._set(value, {75: 8, 76: 7}[attribute])

    def cuDevicePrimaryCtxRetain(self, context, device):
        return self._set(context, 0x1234)

    def cuCtxSetCurrent(self, context):
        return 0

    def cuMemAlloc_v2(self, pointer, size):
        buffer = ctypes.create_string_buffer(size)
        self.memory[ctypes.addressof(buffer)] = buffer
        return self._set(pointer, ctypes.addressof(buffer))

    def cuMemFree_v2(self, address):
        self.freed.append(address)
        self.memory.pop(address)
        return 0

    def cuMemcpyHtoDAsync_v2(self, device, host, size, stream):
        self.copies.append(("to device", size))
        ctypes.memmove(device, host, size)
        return 0

    def cuMemcpyDtoHAsync_v2(self, host, device, size, stream):
        self.copies.append(("to host", size))
        ctypes.memmove(host, device, size)
        return 0

    def cuStreamCreate(self, stream, flags):
        return self._set(stream, 0x5678)

    def cuStreamSynchronize(self, stream):
        self.synchronized += 1
        return 0

    def cuGetErrorString(self, result, message):
        return self._set(message, b"CUDA_ERROR_INVALID_DEVICE")


def test_device_count_and_identity_come_from_the_driver():
    library = FakeLibcuda(devices=2)
    assert cuda_device_count(library) == 2
    assert CudaDriver(1, library=library).identity() == "Stand-in GPU (sm_87)"


def test_a_failed_call_names_itself_and_the_drivers_message():
    with pytest.raises(
        CudaError, match="cuDeviceGet failed with CUDA error 101: CUDA_ERROR_INVALID"
    ):
        CudaDriver(3, library=FakeLibcuda())


def test_arrays_go_to_device_buffers_and_back():
    library = FakeLibcuda()
    driver = CudaDriver(library=library)
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    buffer = driver.allocate(array.nbytes)
    stream = driver.create_stream()
    driver.to_device(buffer, array, stream)
    back = np.empty_like(array)
    driver.to_host(back, buffer, stream)
    driver.synchronize(stream)
    np.testing.assert_array_equal(back, array)
    with pytest.raises(CudaError, match="do not fit"):
        driver.to_device(buffer, np.zeros(13, np.float32), stream)
    address = buffer.address
    del buffer
    assert address in library.freed


def test_tensorrt_runs_on_driver_memory_without_torch(monkeypatch, graph, tmp_path):  # noqa: F811
    module = fake_tensorrt(VERSIONS[10], TENSORRT_API[10])
    monkeypatch.setitem(sys.modules, "tensorrt", module)
    library = FakeLibcuda()
    monkeypatch.setattr(tensorrt_engine, "_DRIVER", CudaDriver(library=library))
    plan = build_serialized_engine(graph, BuildOptions(precision="fp32"), fp16_cache=tmp_path)
    loaded = TensorRTGraph(plan, "small")

    def execute(stream: int) -> bool:
        """'sampled' = the first 16 values of 'image', read from and written to device memory."""
        context = loaded._context
        image = (ctypes.c_float * 16).from_address(context._addresses["image"])
        sampled = (ctypes.c_float * 16).from_address(context._addresses["sampled"])
        ctypes.memmove(sampled, image, ctypes.sizeof(sampled))
        return True

    monkeypatch.setattr(loaded._context, "execute_async_v3", execute)
    image = np.arange(2 * 3 * 8 * 8, dtype=np.float32).reshape(2, 3, 8, 8)
    feed = {"image": image, "grid": np.zeros((2, 2, 2, 2), np.float32)}
    monkeypatch.setattr(loaded._context, "get_tensor_shape", lambda name: (2, 4, 2, 2))
    outputs = loaded.run(feed)
    np.testing.assert_array_equal(outputs["sampled"].ravel()[:16], image.ravel()[:16])
    buffers = len(library.memory)
    loaded.run(feed)  # the same shapes reuse their device buffers
    assert len(library.memory) == buffers and library.synchronized == 2
    with pytest.raises(EngineError, match="needs input 'grid'"):
        loaded.run({"image": image})
