"""The CUDA driver API through ctypes: what the engines need of CUDA, without PyTorch.

TensorRT runs on device memory and a CUDA stream that the caller provides. This module gives
them from ``libcuda`` itself (installed with every NVIDIA driver, Jetson included), so the
TensorRT backend needs neither PyTorch nor pycuda / cuda-python: the device's name and compute
capability (the engine cache key), device buffers, a stream, and copies between host and
device. It works in the device's primary context, the one the CUDA runtime (and so TensorRT)
uses too.
"""

from __future__ import annotations

import ctypes
import weakref
from typing import Any

import numpy as np

LIBRARIES = ("libcuda.so.1", "libcuda.so", "nvcuda.dll")
_COMPUTE_CAPABILITY_MAJOR = 75  # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
_COMPUTE_CAPABILITY_MINOR = 76


class CudaError(RuntimeError):
    """The CUDA driver is missing or a driver call failed (the message names the call)."""


def load_driver() -> Any:
    """``libcuda`` with the argument types of the calls used here, or None without a driver."""
    for name in LIBRARIES:
        try:
            library = ctypes.CDLL(name)
        except OSError:
            continue
        pointer, size, handle = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p
        device_pointer = ctypes.c_uint64  # CUdeviceptr of the _v2 calls
        signatures: dict[str, list[Any]] = {
            "cuInit": [ctypes.c_uint],
            "cuDeviceGetCount": [ctypes.POINTER(ctypes.c_int)],
            "cuDeviceGet": [ctypes.POINTER(ctypes.c_int), ctypes.c_int],
            "cuDeviceGetName": [ctypes.c_char_p, ctypes.c_int, ctypes.c_int],
            "cuDeviceGetAttribute": [ctypes.POINTER(ctypes.c_int), ctypes.c_int, ctypes.c_int],
            "cuDevicePrimaryCtxRetain": [ctypes.POINTER(handle), ctypes.c_int],
            "cuCtxSetCurrent": [handle],
            "cuMemAlloc_v2": [ctypes.POINTER(device_pointer), size],
            "cuMemFree_v2": [device_pointer],
            "cuMemcpyHtoDAsync_v2": [device_pointer, pointer, size, handle],
            "cuMemcpyDtoHAsync_v2": [pointer, device_pointer, size, handle],
            "cuStreamCreate": [ctypes.POINTER(handle), ctypes.c_uint],
            "cuStreamSynchronize": [handle],
            "cuGetErrorString": [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)],
        }
        for function, argtypes in signatures.items():
            getattr(library, function).argtypes = argtypes
            getattr(library, function).restype = ctypes.c_int
        return library
    return None


def cuda_device_count(library: Any = None) -> int:
    """CUDA devices the driver reports (0 without a driver or a GPU)."""
    library = library if library is not None else load_driver()
    if library is None:
        return 0
    count = ctypes.c_int(0)
    if library.cuInit(0) != 0 or library.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return int(count.value)


class DeviceBuffer:
    """``nbytes`` of device memory at ``address``, freed when the buffer is collected."""

    def __init__(self, driver: CudaDriver, nbytes: int) -> None:
        pointer = ctypes.c_uint64(0)
        driver.check(
            driver.library.cuMemAlloc_v2(ctypes.byref(pointer), max(1, nbytes)), "cuMemAlloc"
        )
        self.address = int(pointer.value)
        self.nbytes = nbytes
        self._free = weakref.finalize(self, driver.library.cuMemFree_v2, self.address)
        self._free.atexit = False  # the driver frees everything at exit anyway

    def free(self) -> None:
        self._free()


class CudaDriver:
    """One CUDA device through the driver API, in its primary context.

    Args:
        device: the device's ordinal (after ``CUDA_VISIBLE_DEVICES``).
        library: the driver library (default :func:`load_driver`; tests pass a stand-in).
    Raises:
        CudaError: no driver, no such device, or a call fails.
    """

    def __init__(self, device: int = 0, *, library: Any = None) -> None:
        self.library = library if library is not None else load_driver()
        if self.library is None:
            raise CudaError(f"no CUDA driver library ({', '.join(LIBRARIES)}) loads here")
        self.check(self.library.cuInit(0), "cuInit")
        handle = ctypes.c_int(0)
        self.check(self.library.cuDeviceGet(ctypes.byref(handle), device), "cuDeviceGet")
        self.device = int(handle.value)
        context = ctypes.c_void_p(0)
        self.check(
            self.library.cuDevicePrimaryCtxRetain(ctypes.byref(context), self.device),
            "cuDevicePrimaryCtxRetain",
        )
        self.context = context
        self.make_current()

    def check(self, result: int, call: str) -> None:
        """Raise CudaError naming ``call`` and the driver's message unless ``result`` is 0."""
        if result == 0:
            return
        message = ctypes.c_char_p()
        try:
            self.library.cuGetErrorString(result, ctypes.byref(message))
            text = (message.value or b"").decode(errors="replace")
        except (AttributeError, OSError):
            text = ""
        raise CudaError(f"{call} failed with CUDA error {result}{': ' + text if text else ''}")

    def make_current(self) -> None:
        """Bind the primary context to the calling thread (each thread needs it once)."""
        self.check(self.library.cuCtxSetCurrent(self.context), "cuCtxSetCurrent")

    def name(self) -> str:
        buffer = ctypes.create_string_buffer(256)
        self.check(self.library.cuDeviceGetName(buffer, 256, self.device), "cuDeviceGetName")
        return buffer.value.decode(errors="replace")

    def compute_capability(self) -> tuple[int, int]:
        values = []
        for attribute in (_COMPUTE_CAPABILITY_MAJOR, _COMPUTE_CAPABILITY_MINOR):
            value = ctypes.c_int(0)
            self.check(
                self.library.cuDeviceGetAttribute(ctypes.byref(value), attribute, self.device),
                "cuDeviceGetAttribute",
            )
            values.append(int(value.value))
        return values[0], values[1]

    def identity(self) -> str:
        """Name and compute capability, e.g. ``NVIDIA H100 80GB HBM3 (sm_90)``."""
        major, minor = self.compute_capability()
        return f"{self.name()} (sm_{major}{minor})"

    def allocate(self, nbytes: int) -> DeviceBuffer:
        return DeviceBuffer(self, nbytes)

    def create_stream(self) -> int:
        """A new stream's handle (an integer, as TensorRT's ``execute_async_v3`` takes it)."""
        stream = ctypes.c_void_p(0)
        self.check(self.library.cuStreamCreate(ctypes.byref(stream), 0), "cuStreamCreate")
        return int(stream.value or 0)

    def to_device(self, buffer: DeviceBuffer, array: np.ndarray, stream: int) -> None:
        """Queue a copy of the C-contiguous ``array`` into ``buffer``; keep ``array`` alive
        until :meth:`synchronize`."""
        if array.nbytes > buffer.nbytes:
            raise CudaError(f"{array.nbytes} bytes do not fit a {buffer.nbytes}-byte buffer")
        if array.nbytes:
            self.check(
                self.library.cuMemcpyHtoDAsync_v2(
                    buffer.address, array.ctypes.data, array.nbytes, stream
                ),
                "cuMemcpyHtoDAsync",
            )

    def to_host(self, array: np.ndarray, buffer: DeviceBuffer, stream: int) -> None:
        """Queue a copy of ``buffer`` into the C-contiguous ``array``; valid after
        :meth:`synchronize`."""
        if array.nbytes > buffer.nbytes:
            raise CudaError(f"{array.nbytes} bytes do not fit a {buffer.nbytes}-byte buffer")
        if array.nbytes:
            self.check(
                self.library.cuMemcpyDtoHAsync_v2(
                    array.ctypes.data, buffer.address, array.nbytes, stream
                ),
                "cuMemcpyDtoHAsync",
            )

    def synchronize(self, stream: int) -> None:
        self.check(self.library.cuStreamSynchronize(stream), "cuStreamSynchronize")
