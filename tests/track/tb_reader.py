#!/usr/bin/python3
"""An independent reader of TensorBoard event files, to check deft's writer.

It shares no code with deft: the record framing and CRC-32C are done here in Python,
the messages are parsed by the protobuf runtime (Debian's python3-protobuf) from
definitions built below with descriptor_pb2, using the field numbers of TensorBoard's
event.proto, summary.proto, histogram.proto, tensor.proto, tensor_shape.proto,
plugins/hparams/api.proto, plugins/hparams/plugin_data.proto and
google/protobuf/struct.proto. PNG images are decoded here too (zlib + unfiltering).

    tb_reader.py --writer build/bin/tb_write_sample   # write into a temp dir, check everything
    tb_reader.py --check OUT                          # check what tb_write_sample wrote to OUT
    tb_reader.py --dump FILE                          # print every event of one file

Exit status 0 when every check passes, 1 (with the differences listed) otherwise.
"""

import argparse
import glob
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import zlib

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor_pb2 import FieldDescriptorProto as F

# ---- framing -----------------------------------------------------------------------------


def _crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = _crc_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(crc):
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class CorruptRecord(Exception):
    pass


def read_records(data):
    """The payloads of a TFRecord stream; CorruptRecord on any CRC mismatch or truncation."""
    out, pos = [], 0
    while pos < len(data):
        if len(data) - pos < 12:
            raise CorruptRecord("truncated header at byte %d" % pos)
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if masked(crc32c(header)) != length_crc:
            raise CorruptRecord("length CRC mismatch at byte %d" % pos)
        if len(data) - pos - 12 < length + 4:
            raise CorruptRecord("truncated record at byte %d" % pos)
        payload = data[pos + 12:pos + 12 + length]
        (data_crc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
        if masked(crc32c(payload)) != data_crc:
            raise CorruptRecord("data CRC mismatch in the record at byte %d" % pos)
        out.append(payload)
        pos += 16 + length
    return out


# ---- message definitions -------------------------------------------------------------------

LABEL = {"opt": F.LABEL_OPTIONAL, "rep": F.LABEL_REPEATED}
TYPE = {
    "double": F.TYPE_DOUBLE, "float": F.TYPE_FLOAT, "int64": F.TYPE_INT64, "int32": F.TYPE_INT32,
    "bool": F.TYPE_BOOL, "string": F.TYPE_STRING, "bytes": F.TYPE_BYTES, "enum": F.TYPE_ENUM,
    "msg": F.TYPE_MESSAGE,
}

# name: [(field name, number, label, type, message/enum type name or None, oneof name or None)]
MESSAGES = {
    # event.proto
    "Event": [("wall_time", 1, "opt", "double", None, None), ("step", 2, "opt", "int64", None, None),
              ("file_version", 3, "opt", "string", None, "what"), ("graph_def", 4, "opt", "bytes", None, "what"),
              ("summary", 5, "opt", "msg", "Summary", "what")],
    # summary.proto
    "PluginData": [("plugin_name", 1, "opt", "string", None, None), ("content", 2, "opt", "bytes", None, None)],
    "SummaryMetadata": [("plugin_data", 1, "opt", "msg", "PluginData", None),
                        ("display_name", 2, "opt", "string", None, None),
                        ("summary_description", 3, "opt", "string", None, None),
                        ("data_class", 4, "opt", "int32", None, None)],
    "Image": [("height", 1, "opt", "int32", None, None), ("width", 2, "opt", "int32", None, None),
              ("colorspace", 3, "opt", "int32", None, None),
              ("encoded_image_string", 4, "opt", "bytes", None, None)],
    "Value": [("node_name", 7, "opt", "string", None, None), ("tag", 1, "opt", "string", None, None),
              ("metadata", 9, "opt", "msg", "SummaryMetadata", None),
              ("simple_value", 2, "opt", "float", None, "value"),
              ("obsolete_old_style_histogram", 3, "opt", "bytes", None, "value"),
              ("image", 4, "opt", "msg", "Image", "value"), ("histo", 5, "opt", "msg", "HistogramProto", "value"),
              ("tensor", 8, "opt", "msg", "TensorProto", "value")],
    "Summary": [("value", 1, "rep", "msg", "Value", None)],
    # histogram.proto
    "HistogramProto": [("min", 1, "opt", "double", None, None), ("max", 2, "opt", "double", None, None),
                       ("num", 3, "opt", "double", None, None), ("sum", 4, "opt", "double", None, None),
                       ("sum_squares", 5, "opt", "double", None, None),
                       ("bucket_limit", 6, "rep", "double", None, None), ("bucket", 7, "rep", "double", None, None)],
    # tensor.proto, tensor_shape.proto
    "Dim": [("size", 1, "opt", "int64", None, None), ("name", 2, "opt", "string", None, None)],
    "TensorShapeProto": [("dim", 2, "rep", "msg", "Dim", None), ("unknown_rank", 3, "opt", "bool", None, None)],
    "TensorProto": [("dtype", 1, "opt", "int32", None, None), ("tensor_shape", 2, "opt", "msg", "TensorShapeProto", None),
                    ("version_number", 3, "opt", "int32", None, None), ("tensor_content", 4, "opt", "bytes", None, None),
                    ("float_val", 5, "rep", "float", None, None), ("double_val", 6, "rep", "double", None, None),
                    ("int_val", 7, "rep", "int32", None, None), ("string_val", 8, "rep", "bytes", None, None)],
    # google/protobuf/struct.proto (null_value 1 and struct_value 5 are not written)
    "PbValue": [("number_value", 2, "opt", "double", None, "kind"), ("string_value", 3, "opt", "string", None, "kind"),
                ("bool_value", 4, "opt", "bool", None, "kind"), ("list_value", 6, "opt", "msg", "ListValue", "kind")],
    "ListValue": [("values", 1, "rep", "msg", "PbValue", None)],
    # plugins/hparams/api.proto
    "Interval": [("min_value", 1, "opt", "double", None, None), ("max_value", 2, "opt", "double", None, None)],
    "HParamInfo": [("name", 1, "opt", "string", None, None), ("display_name", 2, "opt", "string", None, None),
                   ("description", 3, "opt", "string", None, None), ("type", 4, "opt", "int32", None, None),
                   ("domain_discrete", 5, "opt", "msg", "ListValue", "domain"),
                   ("domain_interval", 6, "opt", "msg", "Interval", "domain")],
    "MetricName": [("group", 1, "opt", "string", None, None), ("tag", 2, "opt", "string", None, None)],
    "MetricInfo": [("name", 1, "opt", "msg", "MetricName", None), ("display_name", 3, "opt", "string", None, None),
                   ("description", 4, "opt", "string", None, None), ("dataset_type", 5, "opt", "int32", None, None)],
    "Experiment": [("name", 6, "opt", "string", None, None), ("description", 1, "opt", "string", None, None),
                   ("user", 2, "opt", "string", None, None), ("time_created_secs", 3, "opt", "double", None, None),
                   ("hparam_infos", 4, "rep", "msg", "HParamInfo", None),
                   ("metric_infos", 5, "rep", "msg", "MetricInfo", None)],
    # plugins/hparams/plugin_data.proto
    "SessionStartInfo": [("hparams", 1, "rep", "msg", "SessionStartInfo.HparamsEntry", None),
                         ("model_uri", 2, "opt", "string", None, None), ("monitor_url", 3, "opt", "string", None, None),
                         ("group_name", 4, "opt", "string", None, None),
                         ("start_time_secs", 5, "opt", "double", None, None)],
    "SessionEndInfo": [("status", 1, "opt", "int32", None, None), ("end_time_secs", 2, "opt", "double", None, None)],
    "HParamsPluginData": [("version", 1, "opt", "int32", None, None),
                          ("experiment", 2, "opt", "msg", "Experiment", "data"),
                          ("session_start_info", 3, "opt", "msg", "SessionStartInfo", "data"),
                          ("session_end_info", 4, "opt", "msg", "SessionEndInfo", "data")],
}
PACKAGE = "tbreader"


def _add_fields(msg, fields):
    oneofs = []
    for name, number, label, typ, type_name, oneof in fields:
        f = msg.field.add(name=name, number=number, label=LABEL[label], type=TYPE[typ])
        if type_name:
            f.type_name = "." + PACKAGE + "." + type_name
        if oneof:
            if oneof not in oneofs:
                oneofs.append(oneof)
                msg.oneof_decl.add(name=oneof)
            f.oneof_index = oneofs.index(oneof)


def build_classes():
    fd = descriptor_pb2.FileDescriptorProto(name="tb_reader_defs.proto", package=PACKAGE, syntax="proto3")
    for name, fields in MESSAGES.items():
        msg = fd.message_type.add(name=name)
        _add_fields(msg, fields)
        if name == "SessionStartInfo":  # map<string, google.protobuf.Value> hparams = 1
            entry = msg.nested_type.add(name="HparamsEntry")
            _add_fields(entry, [("key", 1, "opt", "string", None, None), ("value", 2, "opt", "msg", "PbValue", None)])
            entry.options.map_entry = True
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    classes = {}
    for name in MESSAGES:
        desc = pool.FindMessageTypeByName(PACKAGE + "." + name)
        if hasattr(message_factory, "GetMessageClass"):
            classes[name] = message_factory.GetMessageClass(desc)
        else:
            classes[name] = message_factory.MessageFactory(pool).GetPrototype(desc)
    return classes


PB = build_classes()

# ---- PNG ---------------------------------------------------------------------------------------


def decode_png(data):
    """(height, width, channels, bytes) of an 8-bit non-interlaced PNG; ValueError otherwise."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise ValueError("PNG chunk %r: CRC mismatch" % kind)
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + n
    width, height, depth, colour, _, _, interlace = ihdr
    channels = {0: 1, 4: 2, 2: 3, 6: 4}.get(colour)
    if depth != 8 or channels is None or interlace:
        raise ValueError("unsupported PNG: depth %d colour %d interlace %d" % (depth, colour, interlace))
    raw = zlib.decompress(idat)
    stride = width * channels
    out = bytearray()
    prev = bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
            elif f != 0:
                raise ValueError("bad PNG filter %d" % f)
        out += line
        prev = line
    return height, width, channels, bytes(out)


# ---- reading a run -------------------------------------------------------------------------------


def read_events(path):
    with open(path, "rb") as f:
        data = f.read()
    events = []
    for payload in read_records(data):
        e = PB["Event"]()
        e.ParseFromString(payload)
        events.append(e)
    return events


def read_run(folder):
    """{tag: [(step, wall_time, Value)]} over every event file directly in `folder`, and the first events."""
    files = sorted(glob.glob(os.path.join(folder, "events.out.tfevents.*")))
    if not files:
        raise AssertionError("no event file in %s" % folder)
    tags, firsts = {}, []
    for path in files:
        events = read_events(path)
        firsts.append(events[0])
        for e in events[1:]:
            if e.WhichOneof("what") != "summary":
                raise AssertionError("%s: an event without a summary: %s" % (path, e))
            for v in e.summary.value:
                tags.setdefault(v.tag, []).append((e.step, e.wall_time, v))
    return tags, firsts


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def pb_value(v):
    kind = v.WhichOneof("kind")
    if kind == "number_value":
        return v.number_value
    if kind == "string_value":
        return v.string_value
    if kind == "bool_value":
        return v.bool_value
    raise AssertionError("unexpected google.protobuf.Value kind %s" % kind)


class Checker:
    def __init__(self):
        self.errors = []
        self.checks = 0

    def eq(self, what, got, want):
        self.checks += 1
        if got != want:
            self.errors.append("%s: got %r, want %r" % (what, got, want))

    def true(self, what, cond):
        self.checks += 1
        if not cond:
            self.errors.append(what)


def hparams_data(c, what, value, field):
    """The HParamsPluginData of an hparams summary value, after checking its envelope."""
    c.eq(what + ": plugin_name", value.metadata.plugin_data.plugin_name, "hparams")
    c.eq(what + ": tensor dtype (DT_FLOAT)", value.tensor.dtype, 1)
    c.eq(what + ": tensor shape", [d.size for d in value.tensor.tensor_shape.dim], [0])
    data = PB["HParamsPluginData"]()
    data.ParseFromString(value.metadata.plugin_data.content)
    c.eq(what + ": version", data.version, 0)
    c.eq(what + ": data", data.WhichOneof("data"), field)
    return getattr(data, field)


def check_first_events(c, folder, firsts):
    for e in firsts:
        c.eq(folder + ": first event file_version", e.file_version, "brain.Event:2")
        c.eq(folder + ": first event step", e.step, 0)
        c.true(folder + ": first event wall_time", e.wall_time > 1.5e9)


def check_image(c, what, value, want_h=None, want_w=None, want_c=None, want_pixels=None):
    img = value.image
    try:
        h, w, ch, px = decode_png(img.encoded_image_string)
    except (ValueError, zlib.error, TypeError, IndexError, struct.error) as e:
        c.true("%s: PNG does not decode: %s" % (what, e), False)
        return
    c.eq(what + ": PNG size", (h, w, ch), (img.height, img.width, img.colorspace))
    if want_h is not None:
        c.eq(what + ": size", (img.height, img.width, img.colorspace), (want_h, want_w, want_c))
    if want_pixels is not None:
        c.eq(what + ": pixels", list(px), want_pixels)


def check_sample(c, out):
    want = json.load(open(os.path.join(out, "sample.json")))
    tags, firsts = read_run(os.path.join(out, "sample"))
    check_first_events(c, "sample", firsts)

    got = [(s, wt, v.simple_value, v.WhichOneof("value")) for s, wt, v in tags.get("loss", [])]
    c.eq("scalars 'loss'", got, [(x["step"], x["wall_time"], f32(x["value"]), "simple_value")
                                 for x in want["scalars"]["loss"]])

    h = want["histogram"]
    entries = tags.get(h["tag"], [])
    c.eq("histogram events", len(entries), 1)
    if entries:
        step, _, v = entries[0]
        c.eq("histogram step", step, h["step"])
        hp = v.histo
        values = h["values"]
        c.eq("histogram num", hp.num, float(len(values)))
        c.eq("histogram min", hp.min, min(values))
        c.eq("histogram max", hp.max, max(values))
        c.true("histogram sum %r vs %r" % (hp.sum, math.fsum(values)), abs(hp.sum - math.fsum(values)) < 1e-9 * len(values))
        ss = math.fsum(x * x for x in values)
        c.true("histogram sum_squares %r vs %r" % (hp.sum_squares, ss), abs(hp.sum_squares - ss) < 1e-9 * ss)
        c.eq("histogram buckets sum to num", sum(hp.bucket), hp.num)
        c.eq("histogram bucket/limit counts", len(hp.bucket), len(hp.bucket_limit))
        c.eq("histogram last limit", hp.bucket_limit[-1] if hp.bucket_limit else None, hp.max)
        c.true("histogram limits increase", all(a < b for a, b in zip(hp.bucket_limit, hp.bucket_limit[1:])))
        lefts = [hp.min] + list(hp.bucket_limit[:-1])
        for i, (lo, hi, n) in enumerate(zip(lefts, hp.bucket_limit, hp.bucket)):
            inside = sum(1 for x in values if lo <= x <= hi)
            c.true("histogram bucket %d [%r, %r]: %r counted, %d values there" % (i, lo, hi, n, inside), n <= inside)

    for im in want["images"]:
        entries = tags.get(im["tag"], [])
        c.eq(im["tag"] + ": events", len(entries), 1)
        if entries:
            c.eq(im["tag"] + ": value kind", entries[0][2].WhichOneof("value"), "image")
            check_image(c, im["tag"], entries[0][2], im["height"], im["width"], im["channels"], im["pixels"])

    t = want["text"]
    entries = tags.get(t["tag"], [])
    c.eq("text events", len(entries), 1)
    if entries:
        v = entries[0][2]
        c.eq("text plugin_name", v.metadata.plugin_data.plugin_name, "text")
        c.eq("text dtype (DT_STRING)", v.tensor.dtype, 7)
        c.eq("text shape (scalar)", len(v.tensor.tensor_shape.dim), 0)
        c.eq("text value", [s.decode("utf-8") for s in v.tensor.string_val], [t["value"]])

    x = want["experiment"]
    entries = tags.get("_hparams_/experiment", [])
    c.eq("experiment events", len(entries), 1)
    if entries:
        exp = hparams_data(c, "experiment", entries[0][2], "experiment")
        c.eq("experiment time_created", exp.time_created_secs, x["time_created"])
        got = []
        for info in exp.hparam_infos:
            d = {"name": info.name, "type": info.type}
            if info.WhichOneof("domain") == "domain_interval":
                d["interval"] = [info.domain_interval.min_value, info.domain_interval.max_value]
            elif info.WhichOneof("domain") == "domain_discrete":
                d["discrete"] = [pb_value(v) for v in info.domain_discrete.values]
            if info.display_name:
                d["display_name"] = info.display_name
            got.append(d)
        c.eq("experiment hparam_infos", got, x["hparams"])
        got = [{"group": m.name.group, "tag": m.name.tag, "dataset_type": m.dataset_type} for m in exp.metric_infos]
        c.eq("experiment metric_infos", got, x["metrics"])

    s = want["session_start"]
    entries = tags.get("_hparams_/session_start_info", [])
    c.eq("session_start events", len(entries), 1)
    if entries:
        start = hparams_data(c, "session_start", entries[0][2], "session_start_info")
        c.eq("session_start hparams", {k: pb_value(v) for k, v in start.hparams.items()}, s["hparams"])
        c.eq("session_start hparam kinds", {k: v.WhichOneof("kind") for k, v in start.hparams.items()},
             {k: {bool: "bool_value", str: "string_value"}.get(type(v), "number_value") for k, v in s["hparams"].items()})
        c.eq("session_start group_name", start.group_name, s["group_name"])
        c.eq("session_start start_time", start.start_time_secs, s["start_time"])

    e = want["session_end"]
    entries = tags.get("_hparams_/session_end_info", [])
    c.eq("session_end events", len(entries), 1)
    if entries:
        end = hparams_data(c, "session_end", entries[0][2], "session_end_info")
        c.eq("session_end status", end.status, e["status"])
        c.eq("session_end end_time", end.end_time_secs, e["end_time"])

    check_corruption(c, want["file"])


def check_fit(c, out):
    """The TensorBoardLogger's run: Keras's layout, values equal to the History."""
    want = json.load(open(os.path.join(out, "fit.json")))
    root = os.path.join(out, "fit")
    runs = {}
    for name, sub in (("root", ""), ("train", "train"), ("validation", "validation")):
        try:
            runs[name], firsts = read_run(os.path.join(root, sub))
            check_first_events(c, "fit/" + sub, firsts)
        except (AssertionError, CorruptRecord) as e:
            c.true("fit/%s: %s" % (sub, e), False)
            runs[name] = {}
    epochs = want["epochs"]

    def series(run, tag):
        return [(s, v.simple_value) for s, _, v in runs[run].get(tag, [])]

    for key in ("loss", "accuracy", "lr"):
        tag = "epoch_learning_rate" if key == "lr" else "epoch_" + key
        c.eq("fit train/" + tag, series("train", tag), [(i, f32(e[key])) for i, e in enumerate(epochs)])
    for key in ("loss", "accuracy", "f1_macro"):
        c.eq("fit validation/epoch_" + key, series("validation", "epoch_" + key),
             [(i, f32(e["val_" + key])) for i, e in enumerate(epochs)])
    c.true("fit: no val_ tags in train", not any(t.startswith("epoch_val_") for t in runs["train"]))

    per_epoch, every = want["batches_per_epoch"], want["batch_every"]
    steps = [s for s, _ in series("train", "batch_loss")]
    c.eq("fit batch_loss steps", steps,
         [e * per_epoch + b for e in range(len(epochs)) for b in range(per_epoch) if (b + 1) % every == 0])

    for p in want["params"]:
        for suffix in ("/histogram", "/gradient"):
            entries = runs["train"].get(p + suffix, [])
            c.eq("fit %s%s steps" % (p, suffix), [s for s, _, _ in entries], list(range(len(epochs))))
            for s, _, v in entries:
                c.true("fit %s%s step %d: buckets sum to num" % (p, suffix, s),
                       sum(v.histo.bucket) == v.histo.num and v.histo.num > 0)

    config = runs["root"].get("config", [])
    c.eq("fit config text events", len(config), 1)
    if config:
        text = config[0][2].tensor.string_val[0].decode()
        c.true("fit config is a json code block", text.startswith("```json\n") and text.endswith("\n```"))
        c.eq("fit config text", json.loads(text[len("```json\n"):-len("\n```")]), want["config"])

    starts = runs["root"].get("_hparams_/session_start_info", [])
    c.eq("fit session_start events", len(starts), 1)
    if starts:
        start = hparams_data(c, "fit session_start", starts[0][2], "session_start_info")
        c.eq("fit session_start hparams", {k: pb_value(v) for k, v in start.hparams.items()}, want["hparams"])
    ends = runs["root"].get("_hparams_/session_end_info", [])
    c.eq("fit session_end events", len(ends), 1)
    if ends:
        end = hparams_data(c, "fit session_end", ends[0][2], "session_end_info")
        c.eq("fit session_end status (SUCCESS)", end.status, 1)
        if starts:
            c.true("fit session ends after it starts", end.end_time_secs >= start.start_time_secs)

    exps = runs["root"].get("_hparams_/experiment", [])
    c.eq("fit experiment events", len(exps), 1)
    if exps:
        exp = hparams_data(c, "fit experiment", exps[0][2], "experiment")
        c.eq("fit experiment hparam names", sorted(i.name for i in exp.hparam_infos), sorted(want["hparams"]))
        names = [(m.name.group, m.name.tag) for m in exp.metric_infos]
        for needed in (("train", "epoch_loss"), ("validation", "epoch_loss"), ("validation", "epoch_accuracy")):
            c.true("fit experiment names the metric %s/%s (has %s)" % (needed + (names,)), needed in names)
        # Each metric the experiment names is a scalar of that run whose last value is the final epoch's.
        for group, tag in names:
            s = series(group, tag) if group in runs else []
            key = ("val_" if group == "validation" else "") + tag[len("epoch_"):]
            c.true("fit metric %s/%s has values" % (group, tag), bool(s))
            if s and key in epochs[-1]:
                c.eq("fit final %s/%s" % (group, tag), s[-1], (len(epochs) - 1, f32(epochs[-1][key])))

    for tag in ("validation/predictions", "validation/confusion_matrix"):
        entries = runs["root"].get(tag, [])
        c.eq("fit %s events" % tag, len(entries), 1)
        if entries:
            c.eq("fit %s step" % tag, entries[0][0], len(epochs) - 1)
            check_image(c, "fit " + tag, entries[0][2])
            c.eq("fit %s colorspace (RGB)" % tag, entries[0][2].image.colorspace, 3)


def check_corruption(c, path):
    """The reader must notice a flipped byte anywhere in a record, and a cut-off file."""
    data = open(path, "rb").read()
    first_len = struct.unpack("<Q", data[:8])[0]
    second = 16 + first_len  # start of the second record
    cases = {
        "a byte of the first record's length": 3,
        "the first record's length CRC": 9,
        "a byte of the first record's data": 12 + first_len // 2,
        "the first record's data CRC": 12 + first_len + 1,
        "a byte of the second record's data": second + 12 + 3,
        "the last byte of the file": len(data) - 1,
    }
    for what, pos in cases.items():
        bad = bytearray(data)
        bad[pos] ^= 0x01
        try:
            read_records(bytes(bad))
            c.true("a flipped bit in %s (byte %d) went unnoticed" % (what, pos), False)
        except CorruptRecord:
            c.checks += 1
    for cut in (5, 12 + first_len, len(data) - 2):
        try:
            read_records(data[:cut])
            c.true("a file cut at byte %d went unnoticed" % cut, False)
        except CorruptRecord:
            c.checks += 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--writer", help="tb_write_sample: run it into a temporary folder, then check")
    g.add_argument("--check", help="a folder tb_write_sample wrote")
    g.add_argument("--dump", help="print the events of one file")
    args = ap.parse_args()
    if args.dump:
        for e in read_events(args.dump):
            print(e)
        return 0
    c = Checker()
    with tempfile.TemporaryDirectory(prefix="deft-tb-") as tmp:
        out = args.check
        if args.writer:
            out = tmp
            subprocess.run([args.writer, out], check=True)
        check_sample(c, out)
        check_fit(c, out)
    for e in c.errors:
        print("FAIL:", e)
    print("%d checks, %d failed" % (c.checks, len(c.errors)))
    return 1 if c.errors else 0


if __name__ == "__main__":
    sys.exit(main())
