"""ratchet's candidate host for Python solutions: ratchet-candidate's twin
(and ratchet-candidate-cuda's: on the CUDA harness the arena is device
memory the harness exported, opened here through CUDA IPC).

The trusted harness starts it with the shared memory file on fd 3, this
script on fd 4 and the answer socket on fd 5, nothing else of its own (no
references, no result file, no secrets in the environment). It imports the
solution's entry point (kLoad), then calls it on tensors the harness placed
in the arena (kCall): inputs, then outputs (destination passing), as
SOL-ExecBench calls a Python solution. The harness times and checks every
call from outside; nothing this process does or reports is evidence.

The control block's layout is kernels/harness/candidate_channel.h's (its
static_assert names the offsets read here).
"""
import ctypes
import importlib.util
import json
import mmap
import os
import socket
import struct
import sys
import time
import traceback

MEMORY_FD, ANSWER_FD = 3, 5
MAGIC = 0x52434831
CONTROL_BYTES = 16384
PING, LOAD, CALL, ARM, PING_LATE = 1, 2, 3, 4, 5
# Offsets in the control block (candidate_channel.h).
REQUEST, DONE, OP, NUM_INPUTS, NUM_OUTPUTS, REPEAT, RC = 4, 8, 12, 24, 28, 32, 40
LIBRARY_PATH, MESSAGE, TENSORS, SLOT_BYTES, MAX_TENSORS, MAX_DIMS = 44, 1068, 3120, 160, 64, 8
IS_DEVICE, DEVICE_INDEX, DEVICE_ARENA_BYTES, IPC_HANDLE = 13360, 13364, 13368, 13376
SYS_FUTEX, FUTEX_WAIT, FUTEX_WAKE = 202, 0, 1  # x86-64
RC_CUDA_ERROR = -0x43554441  # kRcCudaError: `message` holds the CUDA error
SCALAR_FORMATS = {0: "<f", 1: "<e", 3: "<d", 4: "<b", 5: "<i", 6: "<q", 7: "<?", 8: "<B",
                  11: "<h"}  # by ratchet_dtype; bfloat16 below

_libc = ctypes.CDLL(None, use_errno=True)


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _DeviceMemory:
    """Device bytes torch can wrap without a copy (__cuda_array_interface__)."""

    def __init__(self, pointer, nbytes):
        self.__cuda_array_interface__ = {"shape": (nbytes,), "typestr": "|u1",
                                         "data": (pointer, False), "version": 2}



def build_extension(spec_path):
    """A C++ solution with a torch binding, built as SOL-ExecBench builds it
    (torch.utils.cpp_extension, its compile options, CUTLASS's headers where
    the harness found them): the module it makes."""
    from torch.utils import cpp_extension
    with open(spec_path) as f:
        spec = json.load(f)
    return cpp_extension.load(
        name="ratchet_solution", sources=[os.path.abspath(p) for p in spec["sources"]],
        extra_cflags=spec["cflags"], extra_cuda_cflags=spec["cuda_cflags"],
        extra_ldflags=spec["ldflags"],
        extra_include_paths=[os.path.abspath("solution")] + spec.get("include_paths", []),
        build_directory=spec["build_dir"], verbose=False)

def open_device_arena(mem, torch):
    """The harness's device arena as a uint8 tensor: its IPC handle opened
    with the driver API in torch's context on the harness's device."""
    index = struct.unpack_from("<i", mem, DEVICE_INDEX)[0]
    nbytes = struct.unpack_from("<Q", mem, DEVICE_ARENA_BYTES)[0]
    device = torch.device("cuda", index)
    torch.cuda.set_device(device)
    torch.zeros(1, device=device)  # the primary context, current on this thread
    cuda = ctypes.CDLL("libcuda.so.1")

    class Handle(ctypes.Structure):
        _fields_ = [("reserved", ctypes.c_char * 64)]

    handle = Handle.from_buffer_copy(bytes(mem[IPC_HANDLE:IPC_HANDLE + 64]))
    pointer = ctypes.c_uint64(0)
    open_handle = getattr(cuda, "cuIpcOpenMemHandle_v2", None) or cuda.cuIpcOpenMemHandle
    err = open_handle(ctypes.byref(pointer), handle, ctypes.c_uint(1))  # lazy peer access
    if err != 0:
        raise RuntimeError("cuIpcOpenMemHandle (the harness's device arena): error %d" % err)
    arena = torch.as_tensor(_DeviceMemory(pointer.value, nbytes), device=device)
    return device, arena


def main():
    size = os.fstat(MEMORY_FD).st_size
    if size <= CONTROL_BYTES:
        print("candidate_host.py: no shared memory on fd %d" % MEMORY_FD, file=sys.stderr)
        return 2
    mem = mmap.mmap(MEMORY_FD, size)
    if struct.unpack_from("<I", mem, 0)[0] != MAGIC:
        return 2
    harness = os.getppid()
    answer = socket.socket(fileno=ANSWER_FD)
    request_word = ctypes.c_uint32.from_buffer(mem, REQUEST)
    done_word = ctypes.c_uint32.from_buffer(mem, DONE)

    import torch  # after the checks: a broken setup fails fast and plainly
    dtypes = [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int8,
              torch.int32, torch.int64, torch.bool, torch.uint8,
              getattr(torch, "float8_e4m3fn", None), getattr(torch, "float8_e5m2", None),
              torch.int16]

    # Once, not per call: the timed calls pay for nothing they need not.
    element_sizes = [torch.empty((), dtype=d).element_size() if d is not None else 0
                     for d in dtypes]

    def wait_request(seen, awake_s):
        """The next request number; spins for `awake_s` (after kArm the call
        follows at once), then sleeps on the futex in 100 ms slices."""
        until = time.perf_counter() + awake_s
        while True:
            value = request_word.value
            if value != seen:
                return value
            if time.perf_counter() < until:
                continue
            ts = _Timespec(0, 100000000)
            _libc.syscall(ctypes.c_long(SYS_FUTEX), ctypes.c_void_p(ctypes.addressof(request_word)),
                          ctypes.c_int(FUTEX_WAIT), ctypes.c_uint32(seen), ctypes.byref(ts),
                          ctypes.c_void_p(None), ctypes.c_int(0))
            if os.getppid() != harness:
                return seen

    def set_message(text):
        data = text.encode("utf-8", "replace")[:2047] + b"\0"
        mem[MESSAGE:MESSAGE + len(data)] = data

    device = None
    if struct.unpack_from("<i", mem, IS_DEVICE)[0]:
        device, device_arena = open_device_arena(mem, torch)
        warm = torch.zeros(64, dtype=torch.uint8, device=device)

    def argument(index):
        base = TENSORS + index * SLOT_BYTES
        offset, dtype, ndim = struct.unpack_from("<Qii", mem, base)
        shape = struct.unpack_from("<%dq" % MAX_DIMS, mem, base + 16)[:ndim]
        strides = struct.unpack_from("<%dq" % MAX_DIMS, mem, base + 80)[:ndim]
        scalar = struct.unpack_from("<i", mem, base + 144)[0]
        if not 0 <= dtype < len(dtypes) or dtypes[dtype] is None or not 0 <= ndim <= MAX_DIMS:
            raise ValueError("tensor %d: dtype %d, ndim %d" % (index, dtype, ndim))
        if scalar:  # its value travels in the slot: no read of the arena
            bits = mem[base + 152:base + 160]
            if dtype == 2:  # bfloat16: the high half of a float32
                return struct.unpack("<f", b"\0\0" + bits[:2])[0]
            value = struct.unpack_from(SCALAR_FORMATS[dtype], bits, 0)[0]
            return float(value) if dtype in (0, 1, 3) else value
        extent = 1 + sum((n - 1) * s for n, s in zip(shape, strides)) if all(shape) else 0
        if device is None:
            flat = torch.frombuffer(mem, dtype=dtypes[dtype], count=max(extent, 1),
                                    offset=CONTROL_BYTES + offset)
        else:
            nbytes = max(extent, 1) * element_sizes[dtype]
            flat = device_arena[offset:offset + nbytes].view(dtypes[dtype])
        return torch.as_strided(flat, shape, strides) if ndim else flat.reshape(())

    def finish_device_work():
        """Every stream of this process done (the device-wide synchronisation
        ratchet-candidate-cuda makes): 0, or the CUDA error's rc."""
        if device is None:
            return 0
        try:
            torch.cuda.synchronize(device)
            return 0
        except RuntimeError as exc:
            set_message("CUDA error: %s" % str(exc).strip().splitlines()[0][:1500])
            return RC_CUDA_ERROR

    function, dps = None, True
    seen, armed = 0, False
    while True:
        req = wait_request(seen, 0.05 if armed else 0.000005)
        was_armed, armed = armed, False
        if req == seen:
            return 0  # the harness is gone
        seen = req
        op = struct.unpack_from("<I", mem, OP)[0]
        rc = 0
        if op == PING:
            armed = was_armed  # a ping between kArm and kCall keeps it awake
            rc = finish_device_work()
        elif op == ARM:
            armed = True
            if device is not None:
                # The GPU last ran the harness's context: a tiny operation pays
                # for the switch before the timed request.
                warm.zero_()
                rc = finish_device_work()
        elif op == PING_LATE:
            time.sleep(0.0002)
        elif op == LOAD:
            # library_path: "FILE.py::FUNCTION" relative to this process's
            # folder, then a line "dps=0" for a value-returning solution and
            # a line "knob NAME=VALUE" per knob (RATCHET_KNOB_NAME to it).
            text = bytes(mem[LIBRARY_PATH:LIBRARY_PATH + 1024]).split(b"\0")[0].decode()
            entry, *options = text.split("\n")
            dps = "dps=0" not in options
            extension = None
            for line in options:
                if line.startswith("knob ") and "=" in line:
                    name, value = line[5:].split("=", 1)
                    os.environ["RATCHET_KNOB_" + name] = value
                elif line.startswith("extension="):
                    extension = line[len("extension="):]
            try:
                # Relative to this process's folder: the folders above it
                # may be closed to the user it runs as.
                path, name = entry.split("::")
                if extension is not None:
                    module = build_extension(extension)
                else:
                    spec = importlib.util.spec_from_file_location("solution", path)
                    module = importlib.util.module_from_spec(spec)
                    sys.path.insert(0, os.path.dirname(path) or ".")
                    sys.modules["solution"] = module
                    spec.loader.exec_module(module)
                function = getattr(module, name)
                if not callable(function):
                    raise TypeError("%s is not a function" % entry)
                set_message("")
            except BaseException as exc:  # noqa: BLE001 - any failure of candidate code
                lines = traceback.format_exception_only(type(exc), exc)
                set_message("%s: %s" % (entry, lines[-1].strip() if lines else exc))
                rc = -1
        elif op == CALL:
            ni, no = struct.unpack_from("<ii", mem, NUM_INPUTS)
            repeat = struct.unpack_from("<q", mem, REPEAT)[0]
            if function is None or ni < 0 or no < 0 or ni + no > MAX_TENSORS:
                rc = -1
            else:
                try:
                    inputs = [argument(i) for i in range(ni)]
                    outputs = [argument(ni + j) for j in range(no)]
                    for _ in range(max(1, repeat)):
                        if dps:
                            function(*inputs, *outputs)
                        else:
                            result = function(*inputs)
                            if not isinstance(result, (tuple, list)):
                                result = (result,)
                            if len(result) != no:
                                raise ValueError("returned %d values for %d outputs"
                                                 % (len(result), no))
                            for out, value in zip(outputs, result):
                                out.copy_(value)
                    rc = finish_device_work()
                except BaseException as exc:  # noqa: BLE001 - reported as the call's failure
                    traceback.print_exc()
                    rc = -1
                    if device is not None and "CUDA" in str(exc):
                        set_message("CUDA error: %s" % str(exc).strip().splitlines()[0][:1500])
                        rc = RC_CUDA_ERROR
        else:
            rc = -1
        struct.pack_into("<i", mem, RC, rc)
        done_word.value = req
        _libc.syscall(ctypes.c_long(SYS_FUTEX), ctypes.c_void_p(ctypes.addressof(done_word)),
                      ctypes.c_int(FUTEX_WAKE), ctypes.c_int(1), ctypes.c_void_p(None),
                      ctypes.c_void_p(None), ctypes.c_int(0))
        try:
            answer.send(struct.pack("<I", req), socket.MSG_DONTWAIT)
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(main())
