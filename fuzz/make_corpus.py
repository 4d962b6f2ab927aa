#!/usr/bin/env python3
"""Writes the small seed files of fuzz/corpus/ (run from anywhere; needs numpy).

idx/: uint8 images and labels, every other type code, raw and gzip.
npy/: each supported dtype, 0-d to 4-d, header versions 1.0-3.0, and a few
      unsupported ones (big-endian, fortran order, structured) for coverage.
npz/: stored (np.savez) and deflated (np.savez_compressed) archives.
safetensors/: deft model files (the safetensors layout, written here with json +
      struct, independent of deft's writer): every dtype, metadata, empty and 0-d
      tensors, header order differing from offset order, and a few invalid ones.
regress-* files are inputs that once crashed a target, kept by hand (not written here).
"""
import gzip
import io
import json
import os
import struct
import zipfile

import numpy as np
from numpy.lib import format as npformat

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(sub, name, data):
    os.makedirs(os.path.join(ROOT, sub), exist_ok=True)
    with open(os.path.join(ROOT, sub, name), "wb") as f:
        f.write(data)


def idx(code, fmt, arr):
    arr = np.asarray(arr)
    head = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return head + arr.astype(fmt).tobytes()


# gzip.compress with mtime=0 keeps the seeds reproducible byte for byte.
def gz(data):
    return gzip.compress(data, mtime=0)


rng = np.random.RandomState(0)
images = rng.randint(0, 256, size=(3, 4, 4))
put("idx", "images_u8", idx(0x08, ">u1", images))
put("idx", "images_u8.gz", gz(idx(0x08, ">u1", images)))
put("idx", "labels_u8", idx(0x08, ">u1", [9, 0, 3]))
put("idx", "labels_u8.gz", gz(idx(0x08, ">u1", [9, 0, 3])))
put("idx", "i8", idx(0x09, ">i1", [[-1, 2], [3, -128]]))
put("idx", "i16", idx(0x0B, ">i2", [-300, 2, 32767]))
put("idx", "i32", idx(0x0C, ">i4", [[[-70000]], [[5]]]))
put("idx", "f32", idx(0x0D, ">f4", [1.5, -2.0]))
put("idx", "f64.gz", gz(idx(0x0E, ">f8", [[1.5, 1e300]])))
put("idx", "4d", idx(0x08, ">u1", np.arange(16).reshape(1, 2, 2, 4)))


def npy(arr, version=None):
    buf = io.BytesIO()
    npformat.write_array(buf, arr, version=version, allow_pickle=False)
    return buf.getvalue()


put("npy", "f4_2d.npy", npy(np.arange(6, dtype="<f4").reshape(2, 3)))
put("npy", "f8_1d.npy", npy(np.array([1.5, -0.25], dtype="<f8")))
put("npy", "i8.npy", npy(np.array([1, -2, 3], dtype="<i8")))
put("npy", "i4_3d.npy", npy(np.arange(8, dtype="<i4").reshape(2, 2, 2)))
put("npy", "i2.npy", npy(np.array([-5, 7], dtype="<i2")))
put("npy", "i1.npy", npy(np.array([-5, 7], dtype="|i1")))
put("npy", "u1_4d.npy", npy(np.arange(16, dtype="|u1").reshape(1, 2, 2, 4)))
put("npy", "b1.npy", npy(np.array([True, False])))
put("npy", "u2.npy", npy(np.array([1, 65535], dtype="<u2")))
put("npy", "u4.npy", npy(np.array([1, 2**32 - 1], dtype="<u4")))
put("npy", "scalar.npy", npy(np.float32(2.5)))
put("npy", "empty.npy", npy(np.zeros((0, 3), dtype="<f4")))
put("npy", "v2.npy", npy(np.arange(4, dtype="<f4"), version=(2, 0)))
put("npy", "v3.npy", npy(np.arange(4, dtype="<f4"), version=(3, 0)))
put("npy", "big_endian.npy", npy(np.arange(3, dtype=">f4")))
put("npy", "fortran.npy", npy(np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3))))
put("npy", "structured.npy", npy(np.zeros(2, dtype=[("a", "<i4"), ("b", "<f4")])))


def npz(compressed, **arrays):
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    data = bytearray(buf.getvalue())
    # Zero the DOS timestamps (bytes 10..13 of each header) so the seeds are reproducible.
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        offsets = [i.header_offset for i in z.infolist()]
    for off in offsets:
        data[off + 10:off + 14] = b"\0\0\0\0"
    pos = 0
    while True:
        pos = data.find(b"PK\x01\x02", pos)
        if pos < 0:
            break
        data[pos + 12:pos + 16] = b"\0\0\0\0"
        pos += 4
    return bytes(data)


put("npz", "stored_xy.npz", npz(False, x=np.arange(6, dtype="<f4").reshape(3, 2), y=np.array([0, 1, 1])))
put("npz", "deflated_splits.npz", npz(True, x_train=np.arange(8, dtype="|u1").reshape(2, 2, 2),
                                      y_train=np.array([1, 0], dtype="|u1"),
                                      x_test=np.arange(4, dtype="|u1").reshape(1, 2, 2),
                                      y_test=np.array([1], dtype="<i8")))
put("npz", "regression.npz", npz(True, x=np.zeros((2, 3)), y=np.array([0.5, 1.5])))


def safetensors(tensors, metadata=None, order=None, pad=True):
    """tensors: [(name, dtype code, numpy array)] in data order; order: header key order."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, code, arr in tensors:
        raw = arr.tobytes()
        header[name] = {"dtype": code, "shape": list(arr.shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if order is not None:
        header = {k: header[k] for k in order}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    if pad:
        text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


put("safetensors", "mlp.deft", safetensors(
    [("fc1.weight", "F32", np.arange(12, dtype="<f4").reshape(4, 3) / 7),
     ("fc1.bias", "F32", np.array([0.5, -1, 0, 2], dtype="<f4")),
     ("step", "I64", np.array(3, dtype="<i8")),
     ("mask", "U8", np.array([[1, 0], [0, 1]], dtype="|u1"))],
    {"architecture": '{"type": "mlp", "layers": [3, 4]}', "classes": '["a", "b"]'}))
put("safetensors", "every_dtype.safetensors", safetensors(
    [("f64", "F64", np.array([0.1, -1e300], dtype="<f8")),
     ("f16", "F16", np.array([1, -2, 65504, 6e-8], dtype="<f2")),
     ("bf16", "BF16", np.array([0x3fc0, 0xc2f7], dtype="<u2")),
     ("i32", "I32", np.array([-70000, 5], dtype="<i4")),
     ("i16", "I16", np.array([-300], dtype="<i2")),
     ("i8", "I8", np.array([-128, 127], dtype="|i1")),
     ("u64", "U64", np.array([2**40], dtype="<u8")),
     ("u32", "U32", np.array([2**32 - 1], dtype="<u4")),
     ("u16", "U16", np.array([65535], dtype="<u2")),
     ("bool", "BOOL", np.array([True, False])),
     ("empty", "F32", np.zeros((0, 3), dtype="<f4"))]))
put("safetensors", "reordered_header.safetensors", safetensors(
    [("a", "F32", np.ones(2, dtype="<f4")), ("b", "I64", np.array([7], dtype="<i8")),
     ("c", "U8", np.zeros((1, 1), dtype="|u1"))],
    {"k": "v"}, order=["c", "__metadata__", "b", "a"], pad=False))
put("safetensors", "empty.safetensors", safetensors([]))
put("safetensors", "metadata_only.safetensors", safetensors([], {"framework": "pt"}))
# Invalid: unsupported dtype, a gap between tensors, non-string metadata.
put("safetensors", "bad_f8.safetensors", safetensors([("x", "F8_E4M3", np.zeros(4, dtype="|u1"))]))
gap = bytearray(safetensors([("a", "F32", np.ones(1, dtype="<f4")), ("b", "F32", np.ones(1, dtype="<f4"))]))
put("safetensors", "bad_gap.safetensors", bytes(gap.replace(b"[4,8]", b"[5,9]") + b"\0"))
put("safetensors", "bad_metadata.safetensors", struct.pack("<Q", 24) + b'{"__metadata__":{"n":1}}')
