#!/usr/bin/env python3
"""PyTorch reference for `deft train --data fashion-mnist --model mlp|simple_cnn`:
the same model, optimizer and data, timed the same way, so bench/train_vs_torch.sh
can print ratios measured side by side on one machine.

Models (--model):
  mlp         the Keras "basic classification" MLP deft uses as its seed model:
              Flatten -> Linear(784, 128) + ReLU -> Dropout(0.2) -> Linear(128, 10)
  simple_cnn  ../shared/bench/anchors/torch_cnn.py's CNN (deft's simple_cnn, width 1):
              Conv 32 3x3 pad 1 + ReLU -> MaxPool 2 -> Conv 64 3x3 pad 1 + ReLU ->
              MaxPool 2 -> Flatten -> Linear(3136, 128) + ReLU -> Dropout(0.25) -> Linear(128, 10)
Cross-entropy loss from logits, Adam(lr 1e-3), shuffled batches, pixels scaled by 1/255.

    OPENBLAS_CORETYPE=SkylakeX OMP_WAIT_POLICY=PASSIVE \\
        /usr/bin/python3 bench/torch_train.py --model simple_cnn --epochs 3 --batch 128 --threads 2

After training, inference on the 10000 test images is timed --eval-repeat times
(default 3) at --eval-batch (default 128, the CNN's training batch). One pass is
what `deft eval` does per pass: model.eval(), no_grad, and per batch the forward
pass, the loss, softmax probabilities, argmax and the count of correct answers; the
test tensors are in memory before the clock starts. The first pass also creates
oneDNN's kernels for the batch shape; the median pass is reported.

Prints one JSON line (and writes it to --out when given):
  {"train_epoch_s": [...], "train_samples_per_s": 60000 / median epoch,
   "eval_s": [...], "eval_samples_per_s": 10000 / median pass,
   "test_accuracy": ..., "peak_rss_mib": ..., "peak_rss_fit_mib": ... (at the end
   of the training loop, before the test passes), ...}

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
    ap.add_argument("--model", choices=["mlp", "simple_cnn"], default="mlp")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads and OpenBLAS threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--eval-batch", type=int, default=128, help="batch of the timed test-set inference passes")
    ap.add_argument("--eval-repeat", type=int, default=3, help="timed inference passes over the test set")
    ap.add_argument("--data", default=DATA_DIR, help="folder with the four Fashion-MNIST IDX .gz files")
    ap.add_argument("--out", default=None, help="also write the JSON line to this file")
    args = ap.parse_args()
    if args.eval_repeat < 1 or args.eval_batch < 1 or args.batch < 1:
        ap.error("--batch, --eval-batch and --eval-repeat must be at least 1")
    return args


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


def load(prefix, image_shape):
    x = read_idx(os.path.join(ARGS.data, f"{prefix}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(ARGS.data, f"{prefix}-labels-idx1-ubyte.gz"))
    # Pixels / 255 as float32, once, outside the timed loop (deft scales inside its
    # model, per batch; that is its own cost and stays in its numbers).
    x = (x.astype(np.float32) / 255.0).reshape((-1,) + image_shape)
    return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))


def make_model(name):
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10)), (28, 28)
    # ../shared/bench/anchors/torch_cnn.py
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 128), nn.ReLU(),
        nn.Dropout(0.25),
        nn.Linear(128, 10),
    ), (1, 28, 28)


@torch.no_grad()
def evaluate(model, loss_fn, x, y, batch):
    """One pass over the test set, as `deft eval` does it: forward, loss, probabilities,
    argmax. Returns (accuracy, mean loss)."""
    model.eval()
    correct, loss_sum = 0, 0.0
    for i in range(0, x.shape[0], batch):
        xb, yb = x[i:i + batch], y[i:i + batch]
        out = model(xb)
        loss_sum += loss_fn(out, yb).item() * xb.shape[0]
        correct += (torch.softmax(out, 1).argmax(1) == yb).sum().item()
    return correct / x.shape[0], loss_sum / x.shape[0]


def main():
    torch.set_num_threads(ARGS.threads)
    torch.manual_seed(ARGS.seed)
    model, image_shape = make_model(ARGS.model)
    x_train, y_train = load("train", image_shape)
    x_test, y_test = load("t10k", image_shape)
    n = x_train.shape[0]

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

    peak_rss_fit = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # before the test passes
    eval_s = []
    for _ in range(ARGS.eval_repeat):
        t0 = time.perf_counter()
        accuracy, test_loss = evaluate(model, loss_fn, x_test, y_test, ARGS.eval_batch)
        eval_s.append(time.perf_counter() - t0)

    median = statistics.median(epoch_s)
    result = {
        "framework": "torch",
        "torch_version": torch.__version__,
        "model": ARGS.model,
        "parameters": sum(p.numel() for p in model.parameters()),
        "epochs": ARGS.epochs,
        "batch": ARGS.batch,
        "eval_batch": ARGS.eval_batch,
        "threads": ARGS.threads,
        "torch_num_threads": torch.get_num_threads(),
        "blas_limited_by": BLAS_LIMITED_BY,
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS")},
        "train_epoch_s": [round(t, 4) for t in epoch_s],
        "train_loss": [round(v, 5) for v in epoch_loss],
        "train_samples_per_s": round(n / median, 1),
        "eval_s": [round(t, 4) for t in eval_s],
        "eval_samples_per_s": round(x_test.shape[0] / statistics.median(eval_s), 1) if eval_s else None,
        "test_accuracy": accuracy,
        "test_loss": round(test_loss, 5),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "peak_rss_fit_mib": round(peak_rss_fit, 1),
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
