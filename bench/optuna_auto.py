#!/usr/bin/env python3
"""The reference side of `deft auto`: the same search space, budget and protocol run by
Optuna 3.1 (TPE + median pruner, Debian's python3-optuna) driving PyTorch models of
deft's families (Debian's python3-torch), on Fashion-MNIST.

    OPENBLAS_CORETYPE=SkylakeX OMP_WAIT_POLICY=PASSIVE \\
        /usr/bin/python3 bench/optuna_auto.py --budget 10m --threads 2 \\
        --search-examples N --families simple_cnn,lenet5,mlp --out optuna.json

bench/auto_vs_optuna.sh runs `deft auto` first and passes its `search_train_examples`
and `families` (from deft's --metrics-out JSON) here, so both sides train trials on
subsets of the same size, over the same families. The protocol mirrors
src/deft/tune/auto.cpp step by step:

 1. Data: Fashion-MNIST train 60000 / test 10000 (the IDX files). A stratified, seeded
    10% of train is the validation split of the search; trials train on a stratified,
    seeded subset of the other 54000 of --search-examples examples. Pixels are scaled
    by 1/255 and normalised with the mean and std of the training set being fitted
    (the trial's subset; all 60000 for the final model), as deft's Preprocessor does.
 2. Search space (define-by-run, deft's suggest_params): model in the families; lr log
    [1e-4, 1e-2]; batch_size {64, 128, 256}; optimizer {adam, adamw} (adamw: weight_decay
    log [1e-5, 1e-1]); mlp: hidden_units int log [64, 1024], hidden_layers int [1, 3],
    dropout [0, 0.5]; conv families: width [0.5, 1.5], dropout [0, 0.5], simple_cnn
    depth int [1, 3] (vgg_small int [2, 3], resnet_small {8, 14, 20}); augment {none,
    crop:2,flip:0.5} (random crop after 2 pixels of zero padding, horizontal flip with
    p 0.5, per example, in torch on the batch); label_smoothing [0, 0.1]. linear has only
    the shared knobs.
 3. Search: TPESampler(seed, multivariate=True, n_startup_trials=8) + MedianPruner(),
    an SQLite RDBStorage, study.optimize(timeout=...) until the search deadline (start +
    search_fraction x budget). A trial trains up to --max-trial-epochs (9) epochs on its
    subset, reports validation accuracy after each epoch, and is pruned when
    trial.should_prune() says so. Optuna's timeout is only checked between trials, so,
    as deft does, a trial also checks the search deadline after every batch: a trial
    running at the deadline stops there and is recorded as pruned (user attr
    stopped=deadline), its partial epoch not reported. The trial's value is its last
    epoch's validation accuracy. Failed trials are recorded and the search goes on.
 4. Final: the best trial's parameters retrained on all 60000 training examples with a
    per-batch cosine LR schedule (1 warmup epoch, to 0 at the end) for
    floor((time left - 10 s) x 0.92 / estimated epoch time) epochs, capped at 60, where
    the estimate is the best trial's median epoch time x 60000 / subset size (+2%); the
    training stops at deadline - 8 s. When fewer epochs fit than max(2, the best trial's
    epochs), the best trial's model is kept instead. Test accuracy of that model.
 5. Prints a line per trial and a summary, and writes a JSON (--out) with trials
    complete / pruned / failed, the best validation accuracy, the final test accuracy,
    final epochs, wall time and threads (keys named as in deft's metrics JSON).

The clock starts when this script starts, before torch is imported: the import and the
data loading are inside the budget, as deft's data loading is inside its own.
Threads, OPENBLAS_CORETYPE and OMP_WAIT_POLICY: see bench/torch_train.py.
"""
import argparse
import copy
import gzip
import json
import math
import os
import re
import resource
import struct
import sys
import time
import warnings

T_START = time.time()
DATA_DIR = "/usr/share/datasets/fashion-mnist"
ALL_FAMILIES = ("linear", "mlp", "lenet5", "simple_cnn", "vgg_small", "resnet_small")


def parse_duration(s):
    """'10m', '90s', '1h30m', '1d' or plain seconds, as deft's --time-budget takes them."""
    s = str(s).strip()
    try:
        return float(s)
    except ValueError:
        pass
    parts = re.findall(r"(\d+(?:\.\d+)?)(d|h|m|s)", s)
    if not parts or "".join(a + b for a, b in parts) != s:
        raise argparse.ArgumentTypeError(f"not a duration: '{s}' (examples: 90s, 10m, 1h)")
    unit = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
    return sum(float(v) * unit[u] for v, u in parts)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", type=parse_duration, default=600.0, help="wall-clock budget: 90s, 10m, 1h (default 10m)")
    ap.add_argument("--search-fraction", type=float, default=0.5, help="share of the budget spent searching (0.5)")
    ap.add_argument("--search-examples", type=int, default=0,
                    help="training examples per trial (deft's search_train_examples); 0: all 54000")
    ap.add_argument("--families", default="simple_cnn,lenet5,mlp", help="comma-separated model families (deft's families)")
    ap.add_argument("--max-trial-epochs", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads and OpenBLAS threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", choices=["deft", "torch"], default="deft",
                    help="weight init: deft's (glorot_uniform kernels, zero biases; he_normal for vgg_small and "
                         "resnet_small convs) or PyTorch's defaults")
    ap.add_argument("--storage", default="sqlite:///optuna_auto.db", help="Optuna storage URL (an SQLite file)")
    ap.add_argument("--study", default="", help="study name (default optuna-auto-fashion-mnist-<unix time>)")
    ap.add_argument("--data", default=DATA_DIR, help="folder with the four Fashion-MNIST IDX .gz files")
    ap.add_argument("--out", default=None, help="write the summary JSON here")
    ap.add_argument("--verbose", type=int, default=1, help="0 quiet, 1 a line per trial")
    a = ap.parse_args()
    a.families = [f.strip() for f in a.families.split(",") if f.strip()]
    bad = [f for f in a.families if f not in ALL_FAMILIES]
    if bad or not a.families:
        ap.error(f"--families: unknown {bad} (valid: {', '.join(ALL_FAMILIES)})")
    if not 0 < a.search_fraction < 1 or a.budget <= 0 or a.threads < 1 or a.max_trial_epochs < 1:
        ap.error("need 0 < --search-fraction < 1, --budget > 0, --threads >= 1, --max-trial-epochs >= 1")
    return a


ARGS = parse_args()
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, str(ARGS.threads))

import numpy as np  # noqa: E402
import optuna  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

try:
    from threadpoolctl import threadpool_limits

    _BLAS_LIMIT = threadpool_limits(limits=ARGS.threads, user_api="blas")
    BLAS_LIMITED_BY = "threadpoolctl"
except ImportError:
    BLAS_LIMITED_BY = "env OPENBLAS_NUM_THREADS=" + os.environ["OPENBLAS_NUM_THREADS"]


def now():
    return time.time()


def fmt_duration(s):
    t = int(round(max(0.0, s)))
    if t >= 3600:
        return f"{t // 3600}h{t // 60 % 60:02d}m"
    if t >= 60:
        return f"{t // 60}m{t % 60:02d}s"
    return f"{t}s"


def say(msg):
    if ARGS.verbose > 0:
        print(msg, flush=True)


# ---- data ------------------------------------------------------------------------------

def read_idx(path):
    """An IDX file (gzip or raw) as a numpy array (as in bench/torch_train.py)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    zero, code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or code != 0x08:
        raise SystemExit(f"{path}: not a uint8 IDX file")
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(prefix):
    """Images as float32 [N,1,28,28] scaled by 1/255 (not normalised), labels int64."""
    x = read_idx(os.path.join(ARGS.data, f"{prefix}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(ARGS.data, f"{prefix}-labels-idx1-ubyte.gz"))
    x = (x.astype(np.float32) / 255.0).reshape((-1, 1) + x.shape[1:])
    return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))


def stratified_split(labels, fractions, seed):
    """Like deft's data::split_indices with labels: per class a seeded permutation cut at
    llround(cumulative fraction x class size) (the last part takes the rest when the
    fractions sum to 1), then each part shuffled so batches mix classes. Same sizes as
    deft's; not the same examples (a different generator)."""
    rng = np.random.default_rng(seed)
    total = sum(fractions)
    parts = [[] for _ in fractions]
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        begin, acc = 0, 0.0
        for k, f in enumerate(fractions):
            acc += f
            end = len(members) if k + 1 == len(fractions) and abs(total - 1) < 1e-9 else int(math.floor(acc * len(members) + 0.5))
            end = min(max(end, begin), len(members))
            parts[k].extend(members[begin:end].tolist())
            begin = end
    return [rng.permutation(np.asarray(p, dtype=np.int64)) for p in parts]


class Normalised:
    """A training set normalised with its own mean and std (deft's normalize_channels, one
    channel), with the raw-zero value in normalised units for zero padding."""

    def __init__(self, x, y):
        mean = float(x.mean())
        std = float(x.std(unbiased=False)) or 1.0
        self.mean, self.std = mean, std
        self.x = (x - mean) / std
        self.y = y
        self.pad_value = (0.0 - mean) / std

    def transform(self, x):
        return (x - self.mean) / self.std


def augment(xb, pad_value, gen):
    """crop:2,flip:0.5 on a normalised batch [B,C,H,W]: zero-pad 2 pixels per side (zero
    in raw pixels), crop HxW at a random offset per example, then flip horizontally with
    probability 0.5 per example."""
    b, c, h, w = xb.shape
    p = 2
    padded = F.pad(xb, (p, p, p, p), value=pad_value)
    dy = torch.randint(0, 2 * p + 1, (b,), generator=gen)
    dx = torch.randint(0, 2 * p + 1, (b,), generator=gen)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None].expand(b, c, h, w + 2 * p)
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :].expand(b, c, h, w)
    out = padded.gather(2, rows).gather(3, cols)
    flip = torch.rand(b, generator=gen) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(3), out)


# ---- models (deft's families, src/deft/nn/zoo.cpp) -------------------------------------

def scaled(n, width):
    return max(1, int(math.floor(n * width + 0.5)))


class AddRelu(nn.Module):
    def __init__(self, residual, shortcut):
        super().__init__()
        self.residual, self.shortcut = residual, shortcut

    def forward(self, x):
        return F.relu(self.residual(x) + self.shortcut(x))


def make_model(p):
    fam = p["model"]
    width = p.get("width", 1.0)
    dropout = p.get("dropout", 0.0)
    he_convs = []  # convs deft initialises with he_normal
    layers = []
    if fam == "linear":
        layers = [nn.Flatten(), nn.Linear(784, 10)]
    elif fam == "mlp":
        layers, fan_in = [nn.Flatten()], 784
        for _ in range(p["hidden_layers"]):
            h = scaled(p["hidden_units"], 1.0)  # deft auto does not search the mlp's width
            layers += [nn.Linear(fan_in, h), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            fan_in = h
        layers.append(nn.Linear(fan_in, 10))
    elif fam == "lenet5":
        c1, c2, d1, d2 = scaled(6, width), scaled(16, width), scaled(120, width), scaled(84, width)
        layers = [nn.Conv2d(1, c1, 5, padding=2), nn.ReLU(), nn.AvgPool2d(2),
                  nn.Conv2d(c1, c2, 5), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                  nn.Linear(c2 * 5 * 5, d1), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.Linear(d1, d2), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(d2, 10))
    elif fam == "simple_cnn":
        cin, side = 1, 28
        for b in range(p["depth"]):
            c = scaled(32 << b, width)
            layers += [nn.Conv2d(cin, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            cin, side = c, side // 2
        d = scaled(128, width)
        layers += [nn.Flatten(), nn.Linear(cin * side * side, d), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(d, 10))
    elif fam == "vgg_small":
        cin, side = 1, 28
        for b in range(p["depth"]):
            c = scaled(32 << b, width)
            for _ in range(2):
                conv = nn.Conv2d(cin, c, 3, padding=1, bias=False)
                he_convs.append(conv)
                layers += [conv, nn.BatchNorm2d(c), nn.ReLU()]
                cin = c
            layers.append(nn.MaxPool2d(2))
            side //= 2
        d = scaled(128, width)
        layers += [nn.Flatten(), nn.Linear(cin * side * side, d, bias=False), nn.BatchNorm1d(d), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(d, 10))
    elif fam == "resnet_small":
        def conv(i, o, k, s, pad):
            m = nn.Conv2d(i, o, k, stride=s, padding=pad, bias=False)
            he_convs.append(m)
            return m

        blocks = (p["depth"] - 2) // 6
        ch = scaled(16, width)
        layers = [conv(1, ch, 3, 1, 1), nn.BatchNorm2d(ch), nn.ReLU()]
        for stage in range(3):
            out = scaled(16 << stage, width)
            for b in range(blocks):
                s = 2 if stage > 0 and b == 0 else 1
                res = nn.Sequential(conv(ch, out, 3, s, 1), nn.BatchNorm2d(out), nn.ReLU(),
                                    conv(out, out, 3, 1, 1), nn.BatchNorm2d(out))
                short = nn.Sequential(conv(ch, out, 1, s, 0), nn.BatchNorm2d(out)) if s != 1 or ch != out else nn.Identity()
                layers.append(AddRelu(res, short))
                ch = out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(ch, 10))
    else:
        raise ValueError(f"unknown family {fam}")
    model = nn.Sequential(*layers)
    if ARGS.init == "deft":
        he = set(id(m) for m in he_convs)
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                if id(m) in he:
                    nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                else:
                    nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
    return model


# ---- search space (deft's suggest_params) ----------------------------------------------

def suggest_params(t, families):
    fam = t.suggest_categorical("model", families)
    t.suggest_float("lr", 1e-4, 1e-2, log=True)
    t.suggest_categorical("batch_size", [64, 128, 256])
    opt = t.suggest_categorical("optimizer", ["adam", "adamw"])
    if opt == "adamw":
        t.suggest_float("weight_decay", 1e-5, 1e-1, log=True)
    if fam == "mlp":
        t.suggest_int("hidden_units", 64, 1024, log=True)
        t.suggest_int("hidden_layers", 1, 3)
        t.suggest_float("dropout", 0.0, 0.5)
    elif fam != "linear":
        t.suggest_float("width", 0.5, 1.5)
        t.suggest_float("dropout", 0.0, 0.5)
        if fam == "simple_cnn":
            t.suggest_int("depth", 1, 3)
        if fam == "vgg_small":
            t.suggest_int("depth", 2, 3)
        if fam == "resnet_small":
            t.suggest_categorical("depth", [8, 14, 20])
    if fam != "linear":  # images
        t.suggest_categorical("augment", ["none", "crop:2,flip:0.5"])
        t.suggest_float("label_smoothing", 0.0, 0.1)
    return dict(t.params)


# ---- training --------------------------------------------------------------------------

def make_optimizer(model, p):
    if p["optimizer"] == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
    return torch.optim.Adam(model.parameters(), lr=p["lr"])


@torch.no_grad()
def evaluate(model, data_x, data_y, batch=256):
    """(accuracy, mean cross-entropy) over already-normalised data."""
    model.eval()
    correct, loss_sum = 0, 0.0
    for i in range(0, data_x.shape[0], batch):
        out = model(data_x[i:i + batch])
        yb = data_y[i:i + batch]
        loss_sum += F.cross_entropy(out, yb, reduction="sum").item()
        correct += (out.argmax(1) == yb).sum().item()
    return correct / data_x.shape[0], loss_sum / data_x.shape[0]


def fit(model, p, data, epochs, seed, stop_at, on_epoch=None, lr_at_step=None):
    """Trains `model` on `data` (a Normalised) for up to `epochs` epochs: shuffled batches
    (last one partial), augmentation when asked, cross-entropy with label smoothing.
    Stops after the batch where now() >= stop_at. on_epoch(epoch, epoch_s) -> True stops.
    lr_at_step(step) sets the learning rate per batch. Returns (epochs done, per-epoch
    training seconds, stopped by the deadline)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = make_optimizer(model, p)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=p.get("label_smoothing", 0.0))
    aug = p.get("augment", "none") != "none"
    bs, n = p["batch_size"], data.x.shape[0]
    step, epoch_s, stopped = 0, [], False
    for e in range(epochs):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            xb, yb = data.x[idx], data.y[idx]
            if aug:
                xb = augment(xb, data.pad_value, gen)
            if lr_at_step is not None:
                for g in opt.param_groups:
                    g["lr"] = lr_at_step(step)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            step += 1
            if now() >= stop_at:
                stopped = True
                break
        epoch_s.append(time.perf_counter() - t0)
        if stopped:
            return e, epoch_s, True  # a partial epoch does not count
        if on_epoch is not None and on_epoch(e, epoch_s[-1]):
            return e + 1, epoch_s, False
    return epochs, epoch_s, False


def main():
    torch.set_num_threads(ARGS.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # multivariate=True
    budget = ARGS.budget
    deadline = T_START + budget
    search_s = budget * ARGS.search_fraction
    search_deadline = T_START + search_s

    # 1. data
    x_train, y_train = load("train")
    x_test, y_test = load("t10k")
    labels = y_train.numpy()
    pool_idx, val_idx = stratified_split(labels, [0.9, 0.1], ARGS.seed ^ 0x5EED)
    n_search = ARGS.search_examples if ARGS.search_examples > 0 else len(pool_idx)
    n_search = min(max(n_search, min(len(pool_idx), 2000)), len(pool_idx))  # deft's clamp
    if n_search < len(pool_idx):
        (sub,) = stratified_split(labels[pool_idx], [n_search / len(pool_idx)], ARGS.seed ^ 0xABC)
        train_idx = pool_idx[sub]
    else:
        train_idx = pool_idx
    search_train = Normalised(x_train[train_idx], y_train[train_idx])
    val_x, val_y = search_train.transform(x_train[val_idx]), y_train[val_idx]
    say(f"optuna auto: train {len(x_train)} · test {len(x_test)} | families {', '.join(ARGS.families)} | trials on "
        f"{len(train_idx)} of {len(x_train)} training examples, validation {len(val_idx)} | search "
        f"{fmt_duration(search_s)} then final {fmt_duration(budget - search_s)} | {ARGS.threads} thread(s) | "
        f"optuna {optuna.__version__}, torch {torch.__version__} | loaded in {now() - T_START:.1f}s")

    # 2. search
    study_name = ARGS.study or f"optuna-auto-fashion-mnist-{int(T_START)}"
    sampler = optuna.samplers.TPESampler(seed=ARGS.seed, multivariate=True, n_startup_trials=8)
    study = optuna.create_study(study_name=study_name, storage=ARGS.storage, direction="maximize",
                                sampler=sampler, pruner=optuna.pruners.MedianPruner())
    study.set_user_attr("families", ARGS.families)
    best = {"value": -math.inf, "state": None, "number": None}

    def objective(trial):
        p = suggest_params(trial, ARGS.families)
        model = make_model(p)
        value = {"last": math.nan, "pruned": False}

        def on_epoch(e, _s):
            acc, _ = evaluate(model, val_x, val_y)
            value["last"] = acc
            trial.report(acc, e + 1)
            value["pruned"] = trial.should_prune()
            return value["pruned"]

        epochs, epoch_s, stopped = fit(model, p, search_train, ARGS.max_trial_epochs, ARGS.seed + trial.number,
                                       search_deadline, on_epoch)
        trial.set_user_attr("epochs", epochs)
        trial.set_user_attr("epoch_s", epoch_s)
        trial.set_user_attr("parameters", sum(q.numel() for q in model.parameters()))
        trial.set_user_attr("train_examples", len(train_idx))
        if stopped:
            trial.set_user_attr("stopped", "deadline")
            raise optuna.TrialPruned()
        if value["pruned"]:
            raise optuna.TrialPruned()
        v = value["last"]
        if math.isfinite(v) and v > best["value"]:
            best.update(value=v, number=trial.number, state=copy.deepcopy(model.state_dict()))
        return v

    counts = {"COMPLETE": 0, "PRUNED": 0, "FAIL": 0}

    def on_trial_end(st, ft):
        counts[ft.state.name] = counts.get(ft.state.name, 0) + 1
        v = "-" if ft.value is None else f"{ft.value:.4f}"
        if ft.state.name == "PRUNED" and ft.intermediate_values:
            v = f"{ft.intermediate_values[max(ft.intermediate_values)]:.4f}"
        params = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in ft.params.items())
        say(f"[{fmt_duration(now() - T_START):>6}] trial {ft.number:>3} {ft.state.name.lower():<8} val_accuracy {v} "
            f"after {ft.user_attrs.get('epochs', 0)} epoch(s) | done {counts['COMPLETE']} pruned {counts['PRUNED']} "
            f"failed {counts['FAIL']} | best {best['value']:.4f} | {fmt_duration(deadline - now())} left | {params}")

    study.optimize(objective, timeout=max(1.0, search_deadline - now()), catch=(Exception,),
                   callbacks=[on_trial_end], gc_after_trial=False)
    search_end = now()

    # 3. final
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise SystemExit("optuna auto: no trial completed within the search budget")
    bt = study.best_trial
    bp = dict(bt.params)
    es = sorted(bt.user_attrs.get("epoch_s") or [])
    trial_epoch_s = es[len(es) // 2]
    final_epoch_s = trial_epoch_s * len(x_train) / len(train_idx) + 0.02 * trial_epoch_s
    final_left = deadline - now() - 10.0
    fit_epochs = int(math.floor(final_left * 0.92 / final_epoch_s))
    best_epochs = bt.user_attrs.get("epochs", ARGS.max_trial_epochs)
    if fit_epochs >= max(best_epochs, 2) or best["state"] is None:
        epochs = min(max(fit_epochs, 1), 60)
        final_mode = "retrained on train + validation"
        say(f"optuna auto: best trial {bt.number} (val_accuracy {bt.value:.4f}); retraining it on all {len(x_train)} "
            f"training examples for {epochs} epochs (~{fmt_duration(final_epoch_s)} an epoch)")
        full = Normalised(x_train, y_train)
        model = make_model(bp)
        spe = -(-len(x_train) // bp["batch_size"])
        warm, total = spe, epochs * spe

        def cosine(s):  # deft's CosineLR: linear warmup, then cosine to 0 at the last step
            if s < warm:
                return bp["lr"] * (s + 1) / warm
            span = max(1, total - warm)
            return bp["lr"] * (1 + math.cos(math.pi * min(s - warm, span) / span)) / 2

        done, final_epoch_times, hit = fit(model, bp, full, epochs, ARGS.seed, deadline - 8.0, lr_at_step=cosine)
        if hit:
            final_mode += f" (stopped by the deadline after {done} epochs)"
        test_x = full.transform(x_test)
        final_val_x = full.transform(x_train[val_idx])
    else:
        final_mode = "the best trial's model (no time left to retrain)"
        model = make_model(bp)
        model.load_state_dict(best["state"])
        done, final_epoch_times = best_epochs, []
        test_x, final_val_x = search_train.transform(x_test), val_x
    test_acc, test_loss = evaluate(model, test_x, y_test)
    val_acc_final, _ = evaluate(model, final_val_x, y_train[val_idx])

    n = {s: sum(t.state.name == s for t in trials) for s in ("COMPLETE", "PRUNED", "FAIL")}
    wall = now() - T_START
    board = sorted((t for t in trials if t.state.name in ("COMPLETE", "PRUNED")),
                   key=lambda t: (t.state.name != "COMPLETE", -(t.value if t.value is not None else -1)))
    result = {
        "command": "optuna_auto",
        "framework": "torch + optuna",
        "torch_version": torch.__version__,
        "optuna_version": optuna.__version__,
        "dataset": "fashion-mnist",
        "model": bp["model"],
        "epochs": done,
        "test": {"accuracy": test_acc, "loss": test_loss, "examples": int(x_test.shape[0])},
        "val": {"accuracy": val_acc_final, "examples": len(val_idx)},
        "trials": {"complete": n["COMPLETE"], "pruned": n["PRUNED"], "failed": n["FAIL"], "total": len(trials)},
        "best": {"number": bt.number, "params": bp, "value": bt.value, "metric": "val_accuracy"},
        "final": final_mode,
        "final_epoch_s": [round(t, 3) for t in final_epoch_times],
        "study": study_name,
        "storage": ARGS.storage,
        "families": ARGS.families,
        "search_train_examples": len(train_idx),
        "time_budget_s": budget,
        "search_s": search_s,
        "search_wall_s": search_end - T_START,
        "workers": 1,
        "threads": ARGS.threads,
        "torch_num_threads": torch.get_num_threads(),
        "blas_limited_by": BLAS_LIMITED_BY,
        "init": ARGS.init,
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS")},
        "leaderboard": [{"number": t.number, "state": t.state.name.lower(), "value": t.value,
                         "epochs": t.user_attrs.get("epochs"), "params": t.params} for t in board],
        "wall_s": wall,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
    }
    if ARGS.out:
        with open(ARGS.out, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    say(f"optuna auto: {final_mode} | test accuracy {test_acc:.4f} | {n['COMPLETE']} complete, {n['PRUNED']} pruned, "
        f"{n['FAIL']} failed | best val_accuracy {bt.value:.4f} (trial {bt.number}, {bp['model']}) | "
        f"{fmt_duration(wall)} | study '{study_name}' in {ARGS.storage}")
    for var in ("OPENBLAS_CORETYPE", "OMP_WAIT_POLICY"):
        if var not in os.environ:
            print(f"warning: {var} is not set; bench/auto_vs_optuna.sh sets it", file=sys.stderr)


if __name__ == "__main__":
    main()
