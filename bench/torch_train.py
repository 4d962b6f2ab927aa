#!/usr/bin/env python3
"""PyTorch reference for `deft train --data fashion-mnist --model mlp`: the same
model, optimizer and data, timed the same way, so bench/train_vs_torch.sh can
print ratios measured side by side on one machine.

Model (the Keras "basic classification" MLP deft uses as its seed model):
Flatten -> Linear(784, 128) + ReLU -> Dropout(0.2) -> Linear(128, 10), cross-entropy
loss, Adam(lr 1e-3), shuffled batches, pixels scaled by 1/255, test accuracy at the end.

    OPENBLAS_CORETYPE=SkylakeX OMP_WAIT_POLICY=PASSIVE \\
        /usr/bin/python3 bench/torch_train.py --epochs 3 --batch 64 --threads 2

Prints one JSON line (and writes it to --out when given):
  {"train_epoch_s": [...], "train_samples_per_s": 60000 / median epoch,
   "test_accuracy": ..., "peak_rss_mib": ..., ...}

Threads: torch.set_num_threads only sizes the OpenMP pool (ATen, oneDNN). Debian's
torch runs fp32 matmuls through OpenBLAS, whose pthread pool is separate and by
default takes every core; two pools spinning on two cores cost several times the
run time. So the OpenBLAS pool is limited too: with threadpoolctl when it is
installed, otherwise with OPENBLAS_NUM_THREADS / OMP_NUM_THREADS set before torch
is imported (OpenBLAS reads them when it loads). The caller sets
OPENBLAS_CORETYPE=SkylakeX (OpenBLAS does not recognise this CPU and would fall
back to slow generic kernels) and OMP_WAIT_POLICY=PASSIVE (idle OpenMP threads
sleep instead of spinning against OpenBLAS's).
"""
import argparse
import gzip
import json
import os
import resource
import statistics
import struct
import sys
import time

DATA_DIR = "/usr/share/datasets/fashion-mnist"


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads and OpenBLAS threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--data", default=DATA_DIR, help="folder with the four Fashion-MNIST IDX .gz files")
    ap.add_argument("--out", default=None, help="also write the JSON line to this file")
    return ap.parse_args()


ARGS = parse_args()

# Before torch (and its OpenBLAS) loads: the env-var fallback only works if set first.
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, str(ARGS.threads))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

try:
    from threadpoolctl import threadpool_limits

    _BLAS_LIMIT = threadpool_limits(limits=ARGS.threads, user_api="blas")
    BLAS_LIMITED_BY = "threadpoolctl"
except ImportError:
    BLAS_LIMITED_BY = "env OPENBLAS_NUM_THREADS=" + os.environ["OPENBLAS_NUM_THREADS"]


def read_idx(path):
    """An IDX file (gzip or raw) as a numpy array: magic 0 0 type ndim, big-endian dims, data."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    zero, code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or code != 0x08:
        raise SystemExit(f"{path}: not a uint8 IDX file")
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(prefix):
    x = read_idx(os.path.join(ARGS.data, f"{prefix}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(ARGS.data, f"{prefix}-labels-idx1-ubyte.gz"))
    # Pixels / 255 as float32, once, outside the timed loop (deft scales inside its
    # model, per batch; that is its own cost and stays in its numbers).
    return torch.from_numpy(x.astype(np.float32) / 255.0), torch.from_numpy(y.astype(np.int64))


def main():
    torch.set_num_threads(ARGS.threads)
    torch.manual_seed(ARGS.seed)
    x_train, y_train = load("train")
    x_test, y_test = load("t10k")
    n = x_train.shape[0]

    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=ARGS.lr)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(ARGS.seed)

    epoch_s, epoch_loss = [], []
    for _ in range(ARGS.epochs):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        total, batches = 0.0, 0
        for i in range(0, n, ARGS.batch):
            idx = perm[i:i + ARGS.batch]
            xb, yb = x_train[idx], y_train[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item()
            batches += 1
        epoch_s.append(time.perf_counter() - t0)
        epoch_loss.append(total / batches)

    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, x_test.shape[0], 1000):
            correct += (model(x_test[i:i + 1000]).argmax(1) == y_test[i:i + 1000]).sum().item()

    median = statistics.median(epoch_s)
    result = {
        "framework": "torch",
        "torch_version": torch.__version__,
        "model": "mlp",
        "epochs": ARGS.epochs,
        "batch": ARGS.batch,
        "threads": ARGS.threads,
        "torch_num_threads": torch.get_num_threads(),
        "blas_limited_by": BLAS_LIMITED_BY,
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS")},
        "train_epoch_s": [round(t, 4) for t in epoch_s],
        "train_loss": [round(v, 5) for v in epoch_loss],
        "train_samples_per_s": round(n / median, 1),
        "test_accuracy": correct / x_test.shape[0],
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
    }
    line = json.dumps(result)
    print(line)
    if ARGS.out:
        with open(ARGS.out, "w") as f:
            f.write(line + "\n")
    for var in ("OPENBLAS_CORETYPE", "OMP_WAIT_POLICY"):
        if var not in os.environ:
            print(f"warning: {var} is not set; bench/train_vs_torch.sh sets it", file=sys.stderr)


if __name__ == "__main__":
    main()
