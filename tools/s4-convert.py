#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""s4-convert: a PyTorch checkpoint of example.py's S4Model -> params.safetensors + config.json.

    s4-convert.py CKPT.pth OUTDIR [--prenorm] [--dropout P] [--layer-activation gelu]
                  [--l-max N] [--dt-min X] [--dt-max X] [--disc zoh|bilinear|dss]

CKPT.pth is what torch.save wrote: a bare state_dict, or example.py's checkpoint dict
{'model': state_dict, 'acc': ..., 'epoch': ...}. It is read with torch.load(weights_only=True),
so no pickled code runs (torch 1.13's weights_only loader cannot read the dict's Python
floats; such a file is read by load_restricted below, which allows the same few globals). The script needs Debian's python3-torch and python3-numpy only (not
the reference repository, not the safetensors package).

What the tensors determine is inferred: d_input, d_output, d_model, n_layers, the layer class
(S4D of models/s4/s4d.py or S4Block of models/s4/s4.py), d_state and, for S4Block, n_ssm,
rank (or mode diag when there is no P), channels, bidirectional and final_act. What they do
not determine is taken from the options, with example.py's defaults (postnorm, dropout 0.1,
GELU, l_max None, dt in [0.001, 0.1]); prenorm changes nothing in the tensors, so it must be
given when the model was trained with it. Tensors that contradict each other are refused with
a message naming the tensor. Both files are written under temporary names and renamed, so a
failed run leaves no partial file. docs/models.md describes the format.
"""
import argparse
import json
import os
import re
import struct
import sys
import tempfile


def die(msg):
    print("s4-convert: " + msg, file=sys.stderr)
    sys.exit(1)


try:
    import numpy as np
    import torch
except ImportError as e:  # pragma: no cover - depends on the machine
    die("needs python3-torch and python3-numpy (apt-get install python3-torch): %s" % e)


_DTYPES = {"FloatStorage": torch.float32, "DoubleStorage": torch.float64,
           "HalfStorage": torch.float16, "BFloat16Storage": torch.bfloat16,
           "LongStorage": torch.int64, "IntStorage": torch.int32, "ShortStorage": torch.int16,
           "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool}


def _rebuild_tensor(storage, offset, size, stride, *unused):
    return storage.as_strided(tuple(size), tuple(stride), offset).clone()


def _rebuild_parameter(data, *unused):
    return data


def load_restricted(path):
    """Reads torch.save's zip format without torch's unpickler: the pickle may name only
    OrderedDict, tensor rebuilding and storage types, and storages come from the archive's
    data/ entries. Needed because Debian's torch 1.13 weights_only loader refuses plain
    Python floats (pickle opcode BINFLOAT), which example.py's checkpoint dict holds
    ({'model': ..., 'acc': 0.87, 'epoch': 3}), and its torch.load ignores a custom
    pickle_module unless weights_only is set (so it cannot be restricted that way)."""
    import collections
    import io
    import pickle
    import zipfile

    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        die("%s: not torch.save's zip format (legacy checkpoints: re-save with a recent "
            "torch.save)" % path)
    names = zf.namelist()
    pkl = [n for n in names if n.endswith("/data.pkl")]
    if len(pkl) != 1:
        die("%s: no single */data.pkl in the archive" % path)
    prefix = pkl[0][:-len("data.pkl")]

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("collections", "OrderedDict"):
                return collections.OrderedDict
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return _rebuild_tensor
            if (module, name) == ("torch._utils", "_rebuild_parameter"):
                return _rebuild_parameter
            if module == "torch" and name in _DTYPES:
                return _DTYPES[name]
            raise pickle.UnpicklingError("global '%s.%s' is not allowed in a weights file"
                                         % (module, name))

        def persistent_load(self, pid):
            if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and
                    isinstance(pid[1], torch.dtype)):
                raise pickle.UnpicklingError("unexpected persistent id %r" % (pid,))
            raw = zf.read(prefix + "data/" + str(pid[2]))
            return torch.frombuffer(bytearray(raw), dtype=pid[1]) if raw else \
                torch.empty(0, dtype=pid[1])

    try:
        return Unpickler(io.BytesIO(zf.read(pkl[0])), encoding="utf-8").load()
    except Exception as e:
        die("%s: cannot load as a weights-only checkpoint: %s" % (path, e))


def load_state_dict(path):
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds
        if "Unsupported operand" not in str(e):
            die("%s: cannot load with torch.load(weights_only=True): %s" % (path, e))
        obj = load_restricted(path)
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not obj:
        die("%s: expected a state_dict (or a dict with the state_dict under 'model')" % path)
    sd = {}
    for k, v in obj.items():
        if not isinstance(k, str) or not torch.is_tensor(v):
            die("%s: entry %r is not a named tensor" % (path, k))
        sd[k] = v.detach().cpu()
    return sd


def shape(sd, name):
    if name not in sd:
        die("missing tensor '%s'" % name)
    return tuple(sd[name].shape)


def expect(sd, name, want, legend):
    got = shape(sd, name)
    if got != tuple(want):
        die("tensor '%s': shape %s contradicts %s = %s implied by the other tensors"
            % (name, got, legend, tuple(want)))


def infer(sd, args):
    H, d_input = shape(sd, "encoder.weight") if len(shape(sd, "encoder.weight")) == 2 else \
        die("tensor 'encoder.weight': expected 2 dimensions (d_model, d_input), found %s"
            % (shape(sd, "encoder.weight"),))
    expect(sd, "encoder.bias", (H,), "(d_model,)")
    dec = shape(sd, "decoder.weight")
    if len(dec) != 2:
        die("tensor 'decoder.weight': expected (d_output, d_model), found %s" % (dec,))
    d_output = dec[0]
    expect(sd, "decoder.weight", (d_output, H), "(d_output, d_model)")
    expect(sd, "decoder.bias", (d_output,), "(d_output,)")
    layers = sorted({int(m.group(1)) for k in sd for m in [re.match(r"s4_layers\.(\d+)\.", k)] if m})
    n_layers = len(layers)
    if layers != list(range(n_layers)):
        die("layers %s are not numbered 0 .. n-1 (tensors 's4_layers.<i>.*')" % layers)
    norms = sorted({int(m.group(1)) for k in sd for m in [re.match(r"norms\.(\d+)\.", k)] if m})
    if norms != layers:
        die("tensors 'norms.<i>.*' exist for %s but the layers are %s" % (norms, layers))
    for i in layers:
        expect(sd, "norms.%d.weight" % i, (H,), "(d_model,)")
        expect(sd, "norms.%d.bias" % i, (H,), "(d_model,)")
    if n_layers == 0:
        die("no tensor 's4_layers.0.*': not an S4Model state_dict")
    if "s4_layers.0.kernel.log_dt" in sd:
        layer = infer_s4d(sd, H, n_layers, args)
    elif "s4_layers.0.layer.kernel.inv_dt" in sd:
        layer = infer_s4block(sd, H, n_layers, args)
    else:
        die("tensor 's4_layers.0.kernel.log_dt' (S4D) or 's4_layers.0.layer.kernel.inv_dt' "
            "(S4Block) expected: unknown layer class")
    known = {"encoder.weight", "encoder.bias", "decoder.weight", "decoder.bias"}
    known |= {"norms.%d.%s" % (i, w) for i in layers for w in ("weight", "bias")}
    for k in sd:
        if k not in known and not k.startswith("s4_layers."):
            die("unexpected tensor '%s' (not part of an S4Model)" % k)
    return {"architecture": "S4Model", "d_input": d_input, "d_output": d_output, "d_model": H,
            "n_layers": n_layers, "dropout": args.dropout, "prenorm": bool(args.prenorm),
            "layer": layer}


def layer_names(sd, i):
    p = "s4_layers.%d." % i
    return {k[len(p):] for k in sd if k.startswith(p)}


def infer_s4d(sd, H, n_layers, args):
    c = shape(sd, "s4_layers.0.kernel.C")
    if len(c) != 3 or c[0] != H or c[2] != 2:
        die("tensor 's4_layers.0.kernel.C': expected (d_model, d_state/2, 2), found %s" % (c,))
    Nh = c[1]
    want = {"D": (H,), "kernel.C": (H, Nh, 2), "kernel.log_dt": (H,),
            "kernel.log_A_real": (H, Nh), "kernel.A_imag": (H, Nh),
            "output_linear.0.weight": (2 * H, H, 1), "output_linear.0.bias": (2 * H,)}
    for i in range(n_layers):
        names = layer_names(sd, i)
        for n in sorted(names - set(want)):
            die("unexpected tensor 's4_layers.%d.%s' (not part of an S4D layer)" % (i, n))
        for n, s in want.items():
            expect(sd, "s4_layers.%d.%s" % (i, n), s, "the S4D layer's shape")
    return {"class": "S4D", "d_model": H, "d_state": 2 * Nh, "dt_min": args.dt_min,
            "dt_max": args.dt_max, "transposed": True, "lr": None}


def infer_s4block(sd, H, n_layers, args):
    p = "s4_layers.0."
    S, Nh = shape(sd, p + "layer.kernel.A_real")
    diag = p + "layer.kernel.P" not in sd
    rank = None if diag else shape(sd, p + "layer.kernel.P")[0]
    Cpp = shape(sd, p + "layer.kernel.C")[0]
    Cp = shape(sd, p + "layer.D")[0]
    glu_act = args.layer_activation == "glu"
    if Cpp == 2 * Cp:
        bidirectional = True
    elif Cpp == Cp:
        bidirectional = False
    else:
        die("tensor '%slayer.kernel.C': %d kernel rows against %d D rows (layer.D): neither "
            "unidirectional nor bidirectional" % (p, Cpp, Cp))
    if glu_act and Cp % 2:
        die("tensor '%slayer.D': %d rows cannot come from a glu activation" % (p, Cp))
    channels = Cp // 2 if glu_act else Cp
    F_in = Cp * H // 2 if glu_act else Cp * H
    if p + "output_linear.0.weight" in sd:
        lin = p + "output_linear.0.weight"
    elif p + "output_linear.weight" in sd:
        lin = p + "output_linear.weight"
    else:
        lin = None
    if lin is None:
        final_act = None
    else:
        rows = shape(sd, lin)[0]
        final_act = "glu" if rows == 2 * H else "id" if rows == H else die(
            "tensor '%s': %d rows, expected 2 d_model (glu) or d_model (id)" % (lin, rows))
    want = {"layer.kernel.inv_dt": (H, 1), "layer.kernel.A_real": (S, Nh),
            "layer.kernel.A_imag": (S, Nh), "layer.kernel.B": (1, S, Nh, 2),
            "layer.kernel.C": (Cpp, H, Nh, 2), "layer.D": (Cp, H)}
    if not diag:
        want["layer.kernel.P"] = (rank, S, Nh, 2)
        want["layer.kernel.l_kernel"] = ()
    optional_lin = {}
    if lin is not None:
        rows = 2 * H if final_act == "glu" else H
        optional_lin = {lin[len(p):]: (rows, F_in), lin[len(p):].replace("weight", "bias"): (rows,)}
    for i in range(n_layers):
        names = layer_names(sd, i)
        for n in sorted(names - set(want) - set(optional_lin)):
            die("unexpected tensor 's4_layers.%d.%s' (layer 0 implies %s)"
                % (i, n, "mode diag" if diag else "mode dplr"))
        for n, s in want.items():
            expect(sd, "s4_layers.%d.%s" % (i, n), s, "layer 0's shape")
        for n, s in optional_lin.items():
            name = "s4_layers.%d.%s" % (i, n)
            got = shape(sd, name)
            if got != s and not (len(got) == 3 and got[:2] == s and got[2] == 1):
                die("tensor '%s': shape %s contradicts %s" % (name, got, s))
    return {"class": "S4Block", "d_model": H, "d_state": 2 * Nh,
            "l_max": args.l_max, "transposed": True,
            "mode": "diag" if diag else "dplr", "init": "diag-lin" if diag else "legs",
            "rank": 1 if diag else rank, "n_ssm": S, "channels": channels,
            "bidirectional": bidirectional, "activation": args.layer_activation,
            "final_act": final_act, "swap_channels": False, "dt_min": args.dt_min,
            "dt_max": args.dt_max, "dt_tie": True, "dt_transform": "exp",
            "real_transform": "exp", "imag_transform": "none",
            "disc": args.disc if diag else "bilinear", "dt_fast": False, "bandlimit": None,
            "is_real": False, "lr": None}


def safetensors_bytes(sd, metadata):
    """The safetensors layout: an 8-byte little-endian header length, a JSON header padded
    with spaces to a multiple of 8, then every tensor's little-endian bytes, in name order,
    with no gap between them."""
    header = {"__metadata__": metadata}
    blobs, offset = [], 0
    for name in sorted(sd):
        t = sd[name]
        if t.dtype in (torch.int64, torch.int32):
            arr, dt = t.numpy().astype("<i8"), "I64"
        elif t.dtype == torch.float64:
            arr, dt = t.numpy().astype("<f8"), "F64"
        else:
            arr, dt = t.to(torch.float32).numpy().astype("<f4"), "F32"
        b = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def write_atomic(path, data):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".s4-convert-", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv):
    ap = argparse.ArgumentParser(prog="s4-convert.py", description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("outdir")
    ap.add_argument("--prenorm", action="store_true", help="the model was built with prenorm=True")
    ap.add_argument("--dropout", type=float, default=0.1, help="recorded only (training)")
    ap.add_argument("--layer-activation", default="gelu",
                    help="S4Block activation (gelu, relu, glu, ...; default gelu)")
    ap.add_argument("--l-max", type=int, default=None, help="S4Block l_max (default None)")
    ap.add_argument("--dt-min", type=float, default=0.001)
    ap.add_argument("--dt-max", type=float, default=0.1)
    ap.add_argument("--disc", default="zoh", choices=["zoh", "bilinear", "dss"],
                    help="S4Block in mode diag: its discretization (default zoh)")
    args = ap.parse_args(argv)
    sd = load_state_dict(args.checkpoint)
    config = infer(sd, args)
    if not os.path.isdir(args.outdir):
        os.makedirs(args.outdir, exist_ok=True)
    cfg_text = json.dumps(config, indent=1) + "\n"
    st = safetensors_bytes(sd, {"config": json.dumps(config)})
    write_atomic(os.path.join(args.outdir, "params.safetensors"), st)
    write_atomic(os.path.join(args.outdir, "config.json"), cfg_text.encode())
    print("s4-convert: %s -> %s/params.safetensors, %s/config.json (S4Model, %s layers x %d, "
          "d_model %d)" % (args.checkpoint, args.outdir, args.outdir, config["layer"]["class"],
                           config["n_layers"], config["d_model"]))


if __name__ == "__main__":
    main(sys.argv[1:])
