"""PyTorch's side of bench_conv: the benchmark CNN's convolutions, 2x2 max pooling and
BatchNorm2d at batch 128, forward and forward+backward, median of 30 calls, in ms.

  OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/torch_conv_ops.py [--threads 1]
"""
import argparse
import time

import torch
import torch.nn.functional as F


def median_ms(fn, reps=30):
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2] * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=1)
    torch.set_num_threads(ap.parse_args().threads)
    for c, h, o in [(1, 28, 32), (32, 14, 64)]:
        x = torch.randn(128, c, h, h, requires_grad=c > 1)
        w = torch.randn(o, c, 3, 3, requires_grad=True)
        b = torch.randn(o, requires_grad=True)
        g = torch.randn(128, o, h, h)
        fwd = median_ms(lambda: F.conv2d(x, w, b, padding=1))
        both = median_ms(lambda: F.conv2d(x, w, b, padding=1).backward(g))
        print(f"conv [128,{c},{h},{h}] * [{o},{c},3,3]: forward {fwd:.2f} ms, forward+backward {both:.2f} ms")
    x = torch.randn(128, 32, 28, 28, requires_grad=True)
    g = torch.randn(128, 32, 14, 14)
    print(f"max_pool2d [128,32,28,28] forward+backward {median_ms(lambda: F.max_pool2d(x, 2).backward(g)):.2f} ms")
    bn = torch.nn.BatchNorm2d(32)
    g = torch.randn(128, 32, 28, 28)
    print(f"batch_norm [128,32,28,28] forward+backward {median_ms(lambda: bn(x).backward(g)):.2f} ms")


if __name__ == "__main__":
    main()
