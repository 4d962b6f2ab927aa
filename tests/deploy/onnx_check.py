#!/usr/bin/python3
"""Checks ONNX models exported by `deft export --onnx` against deft's own outputs.

    onnx_check.py [--tol 1e-4] MODEL.onnx,INPUT.npy,REF.npy,require|try ...

1. onnx.checker.check_model(full_check=True) (Debian's python3-onnx), and the contract:
   one input "input" [N, ...] float32 with a dynamic batch dim "N", one output
   "probabilities" or "predictions", deft's metadata_props.
2. An independent NumPy evaluator of the ONNX operators the exporter uses, written from
   the ONNX operator specifications and computed in float64: its output on INPUT.npy
   must match REF.npy (what deft computed) within --tol.
3. OpenCV's DNN module (python3-opencv) on the same input: within --tol of REF.npy.
   With "try", a model OpenCV cannot load or run is reported, not failed (the table
   preprocessing's IsNaN/Where/... are not in OpenCV 4.6); with "require" it fails.

Prints one line per check, "MODEL: numpy evaluator agrees ..." / "MODEL: opencv 4.6.0
agrees ...", and exits 1 on any failure.
"""
import argparse
import functools
import math
import sys

import cv2
import numpy as np
import onnx
from onnx import numpy_helper

# ---- the NumPy evaluator ----------------------------------------------------------------


def attrs_of(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def conv(x, w, b, a):
    n, c, h, wd = x.shape
    f, cg, kh, kw = w.shape
    sh, sw = a.get("strides", [1, 1])
    dh, dw = a.get("dilations", [1, 1])
    pt, pl, pb, pr = a.get("pads", [0, 0, 0, 0])
    assert a.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
    group = a.get("group", 1)
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    ho = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, f, ho, wo))
    fg = f // group
    for g in range(group):
        xs = xp[:, g * cg:(g + 1) * cg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dh:i * dh + sh * (ho - 1) + 1:sh, j * dw:j * dw + sw * (wo - 1) + 1:sw]
                out[:, g * fg:(g + 1) * fg] += np.einsum("nchw,fc->nfhw", patch, w[g * fg:(g + 1) * fg, :, i, j])
    if b is not None:
        out += b.reshape(1, f, 1, 1)
    return out


def pool(x, a, average):
    assert not a.get("ceil_mode", 0), "the exporter writes ceil_mode as padding"
    kh, kw = a["kernel_shape"]
    sh, sw = a.get("strides", [1, 1])
    pt, pl, pb, pr = a.get("pads", [0, 0, 0, 0])
    n, c, h, w = x.shape
    fill = 0.0 if average else -np.inf
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=fill)
    ones = np.pad(np.ones((h, w)), ((pt, pb), (pl, pr)))
    ho = (h + pt + pb - kh) // sh + 1
    wo = (w + pl + pr - kw) // sw + 1
    out = np.empty((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            win = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            if not average:
                out[:, :, i, j] = win.max(axis=(2, 3))
            else:
                count = kh * kw if a.get("count_include_pad", 0) else ones[i * sh:i * sh + kh, j * sw:j * sw + kw].sum()
                out[:, :, i, j] = win.sum(axis=(2, 3)) / count
    return out


def channel(v, x):  # a per-channel [C] parameter broadcast over x [N, C, ...]
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def run_node(op, ins, a):
    x = ins[0] if ins else None
    if op in ("Add", "Sub", "Mul", "Div"):
        return {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op](ins[0], ins[1])
    if op == "Max":
        return functools.reduce(np.maximum, ins)
    if op == "Min":
        return functools.reduce(np.minimum, ins)
    if op == "Gemm":
        a_, b_ = (x.T if a.get("transA", 0) else x), (ins[1].T if a.get("transB", 0) else ins[1])
        y = a.get("alpha", 1.0) * (a_ @ b_)
        return y + a.get("beta", 1.0) * ins[2] if len(ins) > 2 else y
    if op == "MatMul":
        return np.matmul(x, ins[1])
    if op == "Conv":
        return conv(x, ins[1], ins[2] if len(ins) > 2 else None, a)
    if op == "MaxPool":
        return pool(x, a, False)
    if op == "AveragePool":
        return pool(x, a, True)
    if op == "GlobalAveragePool":
        return x.mean(axis=tuple(range(2, x.ndim)), keepdims=True)
    if op == "Flatten":
        ax = a.get("axis", 1)
        return x.reshape(int(np.prod(x.shape[:ax])), -1)
    if op == "Reshape":
        shape = [x.shape[i] if d == 0 else int(d) for i, d in enumerate(ins[1])]
        return x.reshape(shape)
    if op == "Identity":
        return x
    if op == "Relu":
        return np.maximum(x, 0)
    if op == "LeakyRelu":
        return np.where(x >= 0, x, a.get("alpha", 0.01) * x)
    if op == "Elu":
        return np.where(x > 0, x, a.get("alpha", 1.0) * (np.exp(np.minimum(x, 0)) - 1))
    if op == "Sigmoid":
        return 1 / (1 + np.exp(-x))
    if op == "Tanh":
        return np.tanh(x)
    if op == "Erf":
        return np.vectorize(math.erf)(x)
    if op == "Sqrt":
        return np.sqrt(x)
    if op == "Softmax":
        return softmax(x, a.get("axis", -1))
    if op == "BatchNormalization":
        scale, bias, mean, var = ins[1:5]
        eps = a.get("epsilon", 1e-5)
        return (x - channel(mean, x)) / np.sqrt(channel(var, x) + eps) * channel(scale, x) + channel(bias, x)
    if op == "LayerNormalization":
        axis = a.get("axis", -1) % x.ndim
        axes = tuple(range(axis, x.ndim))
        mean = x.mean(axis=axes, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
        y = (x - mean) / np.sqrt(var + a.get("epsilon", 1e-5)) * ins[1]
        return y + ins[2] if len(ins) > 2 else y
    if op == "ReduceMean":
        return x.mean(axis=tuple(a["axes"]), keepdims=bool(a.get("keepdims", 1)))
    if op == "Concat":
        return np.concatenate(ins, axis=a["axis"])
    if op == "Gather":
        return np.take(x, ins[1], axis=a.get("axis", 0))
    if op == "Cast":
        to = a["to"]
        return x.astype({onnx.TensorProto.INT64: np.int64, onnx.TensorProto.FLOAT: np.float64}[to])
    if op == "IsNaN":
        return np.isnan(x)
    if op == "IsInf":
        return np.isinf(x)
    if op in ("Or", "And"):
        return (np.logical_or if op == "Or" else np.logical_and)(ins[0], ins[1])
    if op == "Where":
        return np.where(ins[0], ins[1], ins[2])
    if op == "GreaterOrEqual":
        return ins[0] >= ins[1]
    if op == "Less":
        return ins[0] < ins[1]
    if op == "Equal":
        return ins[0] == ins[1]
    if op == "Floor":
        return np.floor(x)
    raise NotImplementedError(f"numpy evaluator: no {op}")


def evaluate(model, x):
    g = model.graph
    values = {t.name: numpy_helper.to_array(t).astype(np.float64) if t.data_type == onnx.TensorProto.FLOAT
              else numpy_helper.to_array(t) for t in g.initializer}
    values[g.input[0].name] = x.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN inputs are the point of the table tests
        for node in g.node:
            values[node.output[0]] = run_node(node.op_type, [values[i] for i in node.input], attrs_of(node))
    return values[g.output[0].name]


# ---- the checks ----------------------------------------------------------------------------


def check_case(path, input_path, ref_path, opencv, tol):
    """The three checks for one exported model; True when all pass."""
    ok = True
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    g = m.graph
    assert [i.name for i in g.input] == ["input"], [i.name for i in g.input]
    assert [o.name for o in g.output] in (["probabilities"], ["predictions"]), [o.name for o in g.output]
    assert g.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert g.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    meta = {p.key: p.value for p in m.metadata_props}
    for key in ("deft_version", "class_names", "preprocessing", "architecture", "task"):
        assert key in meta, f"metadata_props lacks {key}"
    opset = [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")][0]
    print(f"{path}: checker full_check ok (ir {m.ir_version}, opset {opset}, {len(g.node)} nodes)")

    x = np.load(input_path).astype(np.float32)
    ref = np.load(ref_path).astype(np.float64)

    got = evaluate(m, x)
    d = float(np.abs(got - ref).max()) if got.shape == ref.shape else math.inf
    good = d <= tol
    ok = ok and good
    print(f"{path}: numpy evaluator {'agrees' if good else 'DIFFERS'}, shape {got.shape}, max |diff| {d:.3g}")

    try:
        net = cv2.dnn.readNetFromONNX(path)
        net.setInput(x, "input")
        out = net.forward(g.output[0].name)
        d = float(np.abs(out.astype(np.float64) - ref).max()) if out.shape == ref.shape else math.inf
        good = d <= tol
        ok = ok and good
        print(f"{path}: opencv {cv2.__version__} {'agrees' if good else 'DIFFERS'}, shape {out.shape}, "
              f"max |diff| {d:.3g}")
    except cv2.error as e:
        lines = [ln.strip("> ").strip() for ln in str(e).splitlines()]
        reason = [ln for ln in lines if ln][-1][:200]
        if opencv == "require":
            ok = False
            print(f"{path}: opencv FAILED: {reason}")
        else:
            print(f"{path}: opencv cannot run this graph ({reason}); the numpy evaluator stands in")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", nargs="+", metavar="MODEL,INPUT,REF,require|try")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    ok = True
    for case in args.cases:  # one process for all: importing onnx and cv2 costs a second each time
        path, input_path, ref_path, opencv = case.split(",")
        assert opencv in ("require", "try"), case
        try:
            ok = check_case(path, input_path, ref_path, opencv, args.tol) and ok
        except Exception as e:  # noqa: BLE001 - a failed check of one model must not hide the others
            ok = False
            print(f"{path}: FAILED: {type(e).__name__}: {e}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
