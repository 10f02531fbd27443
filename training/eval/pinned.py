"""Page-locks the shared logits buffer for a GPU.

A batch's logits (8 x 1,024 x 50,257 float32, 1.6 GB) cross from the model
host to the evaluator through a shared buffer: the host copies them off the
device into it, the evaluator copies them back onto the device as its private
copy. From pageable memory each copy goes through the driver's small staging
buffer; from page-locked memory it runs at the bus's speed. Both processes
lock their own mapping of the same pages.

Nothing here decides a number: a buffer that cannot be locked stays as it was,
and the copies give the same bytes, only slower.
"""
import ctypes


def pin(buffer, device):
    """Locks `buffer` (an open mmap) for CUDA when `device` is a GPU.
    Returns its address (for unpin) or None when not locked."""
    if not str(device).startswith("cuda") or len(buffer) == 0:
        return None
    try:
        import torch
        holder = ctypes.c_char.from_buffer(buffer)
        address = ctypes.addressof(holder)
        del holder  # the mmap can be closed again; its address stays until then
        if int(torch.cuda.cudart().cudaHostRegister(address, len(buffer), 0)) != 0:
            return None
        return address
    except Exception:  # noqa: BLE001 - slower, never wrong
        return None


def unpin(address):
    """Undoes pin(); call before the mmap is closed."""
    if address is None:
        return
    try:
        import torch
        torch.cuda.cudart().cudaHostUnregister(address)
    except Exception:  # noqa: BLE001
        pass
