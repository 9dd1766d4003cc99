#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""s4-convert: a PyTorch checkpoint -> params.safetensors + config.json for libs4.

    s4-convert.py CKPT.pth OUTDIR [--prenorm] [--dropout P] [--layer-activation gelu]
                  [--l-max N] [--dt-min X] [--dt-max X] [--disc zoh|bilinear|dss]
                  [--init NAME] [--dt-transform T] [--real-transform T] [--imag-transform T]
                  [--swap-channels] [--final-act glu|id] [--sample-rate HZ]

Three architectures, told apart by the state_dict names:
* example.py's S4Model (`s4_layers.*`, `norms.*`, `encoder.*`, `decoder.*`);
* the Sashimi backbone of models/sashimi/sashimi.py (`d_layers.*`, `c_layers.*`, `u_layers.*`,
  `norm.*`);
* SashimiLM, a token model around it (`encoder.weight` an Embedding (n_tokens, d_model) without
  bias, `backbone.<Sashimi names>`, `decoder.weight`, `decoder.bias`).

CKPT.pth is what torch.save wrote: a bare state_dict, or example.py's checkpoint dict
{'model': state_dict, 'acc': ..., 'epoch': ...}, or a Lightning-style dict with the state_dict
under 'state_dict'. When no architecture is recognized and every name shares one leading
component (`model.`, `module.`, ...), that prefix is stripped (and reported). The file is read
with torch.load(weights_only=True), so no pickled code runs (torch 1.13's weights_only loader
cannot read the dict's Python floats; such a file is read by load_restricted below, which
allows the same few globals). The script needs Debian's python3-torch and python3-numpy only
(not the reference repository, not the safetensors package).

What the tensors determine is inferred. S4Model: d_input, d_output, d_model, n_layers, the
layer class (S4D of models/s4/s4d.py or S4Block of models/s4/s4.py), d_state and, for S4Block,
n_ssm, rank (or mode diag when there is no P), channels, bidirectional and final_act.
Sashimi: d_model, n_layers, pool, expand, ff, unet and the S4 layers' mode, rank, n_ssm
(1, null = per feature, or k), channels, bidirectional and final_act (d_state is fixed to 64
by Sashimi); SashimiLM also n_tokens. What they do not determine is taken from the options,
with the reference defaults: S4Model as example.py (postnorm, dropout 0.1, GELU, l_max None,
dt in [0.001, 0.1]); Sashimi dropout 0.0; S4 layers init legs (diag-lin in mode diag), dt,
real and imaginary transforms exp, exp, none, disc zoh (mode diag; dplr records bilinear),
l_max None; SashimiLM sample_rate 16000, mu-law. prenorm changes nothing in the tensors, so it
must be given when an S4Model was trained with it. Every tensor's shape is checked against
the inferred architecture; contradictions, missing and unexpected tensors are refused with a
message naming the tensor. Tensors are written unchanged (names, shapes, dtypes; the int64
scalars `...kernel.l_kernel` stay int64). Both files are written under temporary names and
renamed, so a failed run leaves no partial file. docs/models.md describes the format.
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
    elif isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]  # a Lightning checkpoint
    if not isinstance(obj, dict) or not obj:
        die("%s: expected a state_dict (or a dict with the state_dict under 'model' or "
            "'state_dict')" % path)
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
            "n_layers": n_layers, "dropout": 0.1 if args.dropout is None else args.dropout,
            "prenorm": bool(args.prenorm), "layer": layer}


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
    final_act = infer_final_act(sd, lin, H, args)
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
            "mode": "diag" if diag else "dplr", "init": init_name(args, diag),
            "rank": 1 if diag else rank, "n_ssm": S, "channels": channels,
            "bidirectional": bidirectional, "activation": args.layer_activation,
            "final_act": final_act, "swap_channels": bool(args.swap_channels),
            "dt_min": args.dt_min, "dt_max": args.dt_max, "dt_tie": True,
            "dt_transform": args.dt_transform, "real_transform": args.real_transform,
            "imag_transform": args.imag_transform,
            "disc": args.disc if diag else "bilinear", "dt_fast": False, "bandlimit": None,
            "is_real": False, "lr": None}


def init_name(args, diag):
    """--init, else S4Block's legs (mode dplr) and the converter's diag-lin (mode diag)."""
    return args.init if args.init is not None else "diag-lin" if diag else "legs"


def infer_final_act(sd, lin, H, args):
    """final_act from the output linear's rows: 2 H is glu, H is an elementwise activation
    (id unless --final-act names another), no output linear is null."""
    if lin is None:
        if args.final_act not in (None, "null", "none"):
            die("--final-act %s: the layer has no output linear (tensor '%s' absent), so its "
                "final_act is null" % (args.final_act, "...output_linear.0.weight"))
        return None
    rows = shape(sd, lin)[0]
    if rows == 2 * H:
        if args.final_act not in (None, "glu"):
            die("tensor '%s': %d rows = 2 d_model mean final_act glu, not --final-act %s"
                % (lin, rows, args.final_act))
        return "glu"
    if rows == H:
        if args.final_act in ("glu", "null", "none"):
            die("tensor '%s': %d rows = d_model mean an elementwise final_act, not "
                "--final-act %s" % (lin, rows, args.final_act))
        return args.final_act or "id"
    die("tensor '%s': %d rows, expected 2 d_model (glu) or d_model (id)" % (lin, rows))


# ---------------------------------------------------------------------------------------------
# Sashimi (models/sashimi/sashimi.py) and SashimiLM

SASHIMI_D_STATE = 64  # Sashimi builds every S4 layer with d_state = 64
SASHIMI_MARKERS = ("d_layers.", "c_layers.", "u_layers.", "norm.")


def detect(sd):
    """The architecture the names belong to, or None when none is recognized."""
    if any(k.startswith("backbone.") for k in sd):
        return "SashimiLM"
    if any(k.startswith("s4_layers.") for k in sd):
        return "S4Model"
    if any(k.startswith(SASHIMI_MARKERS) for k in sd):
        return "Sashimi"
    if "encoder.weight" in sd or any(k.startswith("norms.") for k in sd):
        return "S4Model"
    return None


def strip_common_prefix(sd):
    """A wrapper's state_dict (Lightning's `model.`, DataParallel's `module.`): when no
    architecture is recognized and every name starts with the same component, that component
    is dropped, as long as this makes the names recognizable. Returns (sd, prefix)."""
    prefix = ""
    while detect(sd) is None:
        heads = {k.split(".", 1)[0] if "." in k else None for k in sd}
        if len(heads) != 1 or None in heads:
            break
        p = heads.pop() + "."
        sd = {k[len(p):]: v for k, v in sd.items()}
        prefix += p
    if detect(sd) is None:
        some = ", ".join("'%s'" % k for k in sorted(sd)[:4])
        die("no known architecture in the names (%s%s): expected 's4_layers.*' (S4Model), "
            "'d_layers.*', 'c_layers.*', 'u_layers.*', 'norm.*' (Sashimi) or 'backbone.*' with "
            "'encoder.weight' and 'decoder.*' (SashimiLM)" % (some, ", ..." if len(sd) > 4 else ""))
    return sd, prefix


def shape_nd(sd, name, nd, legend):
    s = shape(sd, name)
    if len(s) != nd:
        die("tensor '%s': shape %s, expected %d dimensions %s" % (name, s, nd, legend))
    return s


def block_names(sd, b):
    return sorted(k[len(b):] for k in sd if k.startswith(b))


def block_kind(sd, b):
    """'pool' (DownPool / UpPool), 'ff' (residual FF block) or 's4' (residual S4 block)."""
    names = block_names(sd, b)
    if any(n.startswith("linear.") for n in names):
        return "pool"
    if any(n.startswith("layer.ff.") for n in names):
        return "ff"
    if any(n.startswith(("layer.layer.", "layer.output_linear")) for n in names):
        return "s4"
    die("unexpected tensor '%s%s' (not part of a Sashimi block: S4, FF, DownPool or UpPool)"
        % (b, names[0]))


def numbered(sd, prefix):
    """The block indices i of tensors '<prefix><i>.*', which must be 0 .. n-1."""
    pat = re.compile(re.escape(prefix) + r"(\d+)\.")
    idx = sorted({int(m.group(1)) for k in sd for m in [pat.match(k)] if m})
    for i, j in enumerate(idx):
        if i != j:
            die("missing tensors '%s%d.*' (blocks %s are not numbered 0 .. n-1)" % (prefix, i, idx))
    return len(idx)


KIND_LEGEND = {"s4": "a residual S4 block", "ff": "a residual FF block",
               "pool": "a pooling block (linear.*)"}
KIND_FIRST = {"s4": "norm.weight", "ff": "norm.weight", "pool": "linear.weight"}


def check_kinds(sd, prefix, got, want, legend):
    for i in range(max(len(got), len(want))):
        b = "%s%d." % (prefix, i)
        if i >= len(want):
            die("unexpected tensor '%s%s' (%s has only %d blocks in '%s*')"
                % (b, block_names(sd, b)[0], legend, len(want), prefix))
        if i >= len(got):
            die("missing tensor '%s%s' (%s has %s as block %d of '%s*')"
                % (b, KIND_FIRST[want[i]], legend, KIND_LEGEND[want[i]], i, prefix))
        if got[i] != want[i]:
            die("tensor '%s%s': block '%s' is %s where %s has %s"
                % (b, block_names(sd, b)[0], b[:-1], KIND_LEGEND[got[i]], legend,
                   KIND_LEGEND[want[i]]))


def infer_sashimi(sd, P, args):
    """The Sashimi config from the tensors under prefix P ('' or 'backbone.'), every tensor
    under P checked. Returns (config, expected names)."""
    H = shape_nd(sd, P + "norm.weight", 1, "(d_model,)")[0]
    n_d = numbered(sd, P + "d_layers.")
    n_c = numbered(sd, P + "c_layers.")
    n_u = numbered(sd, P + "u_layers.")
    d_kinds = [block_kind(sd, "%sd_layers.%d." % (P, i)) for i in range(n_d)]
    c_kinds = [block_kind(sd, "%sc_layers.%d." % (P, i)) for i in range(n_c)]
    u_kinds = []
    for j in range(n_u):
        m = numbered(sd, "%su_layers.%d." % (P, j))
        u_kinds.append([block_kind(sd, "%su_layers.%d.%d." % (P, j, i)) for i in range(m)])

    # n_layers and ff > 0 from the centre: n_layers x (S4 block [, FF block]).
    if not c_kinds:
        die("missing tensor '%sc_layers.0.norm.weight' (a Sashimi has n_layers >= 1 centre "
            "blocks)" % P)
    n_layers = c_kinds.count("s4")
    has_ff = "ff" in c_kinds
    unit = ["s4", "ff"] if has_ff else ["s4"]
    legend = "the Sashimi (n_layers %d, %s)" % (n_layers, "ff > 0" if has_ff else "ff 0")
    check_kinds(sd, P + "c_layers.", c_kinds, unit * n_layers, legend)

    # Pools: the DownPools of d_layers; U-Net when d_layers also holds blocks.
    n_pool = d_kinds.count("pool")
    unet = any(k != "pool" for k in d_kinds)
    legend = "the Sashimi (n_layers %d, %s, %d pools, unet %s)" % (
        n_layers, "ff > 0" if has_ff else "ff 0", n_pool, "true" if unet else "false")
    level = ((unit * n_layers) if unet else []) + ["pool"]
    check_kinds(sd, P + "d_layers.", d_kinds, level * n_pool, legend)
    if n_u > n_pool:
        b = "%su_layers.%d." % (P, n_pool)
        die("unexpected tensor '%s%s' (%s has %d up blocks)"
            % (b, block_names(sd, b)[0], legend, n_pool))
    if n_u < n_pool:
        die("missing tensor '%su_layers.%d.0.linear.weight' (%s has %d up blocks)"
            % (P, n_u, legend, n_pool))
    for j in range(n_pool):
        check_kinds(sd, "%su_layers.%d." % (P, j), u_kinds[j], ["pool"] + unit * n_layers,
                    legend)

    # pool and expand from the DownPools: linear.weight (d expand, d p, 1) at width d;
    # each must agree with its UpPool: (d p, d expand, 1).
    down = [i for i, k in enumerate(d_kinds) if k == "pool"]
    pools, expand, d = [], None, H
    for j, i in enumerate(down):
        dn = "%sd_layers.%d.linear.weight" % (P, i)
        w = shape_nd(sd, dn, 3, "(d_in expand, d_in pool, 1)")
        if w[2] != 1 or w[0] < d or w[1] < d or w[0] % d or w[1] % d:
            die("tensor '%s': shape %s is not a DownPool weight (%d expand, %d pool, 1) of "
                "the level width %d" % (dn, w, d, d, d))
        e, p = w[0] // d, w[1] // d
        if expand is None:
            expand = e
        elif e != expand:
            die("tensor '%s': shape %s means expand %d, but the first DownPool "
                "('%sd_layers.%d.linear.weight') has expand %d"
                % (dn, w, e, P, down[0], expand))
        un = "%su_layers.%d.0.linear.weight" % (P, n_pool - 1 - j)
        uw = shape(sd, un)
        if uw != (d * p, d * expand, 1):
            die("tensor '%s': shape %s contradicts the DownPool '%s' %s (pool %d, expand %d "
                "at width %d: the UpPool weight is %s)"
                % (un, uw, dn, w, p, expand, d, (d * p, d * expand, 1)))
        pools.append(p)
        d *= expand
    if expand is None:
        expand = 2  # no pools: nothing tells; Sashimi's default
    Hc = d

    # ff from the centre's first FF block: ff.0.0.weight (ff d, d, 1).
    ff = 0
    if has_ff:
        fn = "%sc_layers.%d.layer.ff.0.0.weight" % (P, c_kinds.index("ff"))
        w = shape_nd(sd, fn, 3, "(d ff, d, 1)")
        if w[1] != Hc or w[2] != 1 or w[0] < Hc or w[0] % Hc:
            die("tensor '%s': shape %s is not an FF input weight (%d ff, %d, 1) of the centre "
                "width %d" % (fn, w, Hc, Hc, Hc))
        ff = w[0] // Hc

    s4cfg, s4_want = infer_sashimi_s4(sd, "%sc_layers.0." % P, Hc, args)

    want = {}  # name -> (allowed shapes, legend)

    def res_block(b, h, kind):
        want[b + "norm.weight"] = ([(h,)], "the LayerNorm of width %d" % h)
        want[b + "norm.bias"] = ([(h,)], "the LayerNorm of width %d" % h)
        if kind == "s4":
            for n, (shapes, leg) in s4_want(h).items():
                want[b + n] = (shapes, leg)
        else:
            leg = "the FF block (ff %d) of width %d" % (ff, h)
            want[b + "layer.ff.0.0.weight"] = ([(ff * h, h, 1)], leg)
            want[b + "layer.ff.0.0.bias"] = ([(ff * h,)], leg)
            want[b + "layer.ff.2.weight"] = ([(h, ff * h, 1)], leg)
            want[b + "layer.ff.2.bias"] = ([(h,)], leg)

    def pool_block(b, rows, cols, leg):
        want[b + "linear.weight"] = ([(rows, cols, 1)], leg)
        want[b + "linear.bias"] = ([(rows,)], leg)

    widths = [H * expand ** j for j in range(n_pool + 1)]
    i = 0
    for j, p in enumerate(pools):
        h = widths[j]
        if unet:
            for k in unit * n_layers:
                res_block("%sd_layers.%d." % (P, i), h, k)
                i += 1
        pool_block("%sd_layers.%d." % (P, i), h * expand, h * p,
                   "the DownPool (pool %d, expand %d) of width %d" % (p, expand, h))
        i += 1
    for i, k in enumerate(unit * n_layers):
        res_block("%sc_layers.%d." % (P, i), Hc, k)
    for u, j in enumerate(reversed(range(n_pool))):
        h, p = widths[j], pools[j]
        pool_block("%su_layers.%d.0." % (P, u), h * p, h * expand,
                   "the UpPool (pool %d, expand %d) to width %d" % (p, expand, h))
        for i, k in enumerate(unit * n_layers):
            res_block("%su_layers.%d.%d." % (P, u, i + 1), h, k)
    want[P + "norm.weight"] = ([(H,)], "the final LayerNorm (d_model,)")
    want[P + "norm.bias"] = ([(H,)], "the final LayerNorm (d_model,)")

    bidirectional = s4cfg.pop("_bidirectional")
    config = {"architecture": "Sashimi", "d_model": H, "n_layers": n_layers, "pool": pools,
              "expand": expand, "ff": ff, "bidirectional": bidirectional, "unet": unet,
              "dropout": 0.0 if args.dropout is None else args.dropout, "s4": s4cfg}
    return config, want


def infer_sashimi_s4(sd, b, H, args):
    """The S4Block arguments of the Sashimi's S4 layers from its first centre block b (width
    H). Returns (the "s4" config, a function width -> {name: (shapes, legend)})."""
    q = b + "layer.layer."
    S, Nh = shape_nd(sd, q + "kernel.A_real", 2, "(n_ssm, d_state/2)")
    if 2 * Nh != SASHIMI_D_STATE:
        die("tensor '%skernel.A_real': shape %s means d_state %d, but Sashimi fixes d_state = "
            "%d" % (q, (S, Nh), 2 * Nh, SASHIMI_D_STATE))
    if S == 1:
        n_ssm = 1
    elif S == H:
        n_ssm = None  # one SSM per feature at every width
    elif H % S == 0:
        n_ssm = S
    else:
        die("tensor '%skernel.A_real': %d SSMs do not divide the width %d" % (q, S, H))
    diag = q + "kernel.P" not in sd
    rank = None if diag else shape_nd(sd, q + "kernel.P", 4, "(rank, n_ssm, d_state/2, 2)")[0]
    Cpp = shape_nd(sd, q + "kernel.C", 4, "(channels, d_model, d_state/2, 2)")[0]
    Cp = shape_nd(sd, q + "D", 2, "(channels, d_model)")[0]
    glu_act = args.layer_activation == "glu"
    if Cpp == 2 * Cp:
        bidirectional = True
    elif Cpp == Cp:
        bidirectional = False
    else:
        die("tensor '%skernel.C': %d kernel rows against %d D rows (%sD): neither "
            "unidirectional nor bidirectional" % (q, Cpp, Cp, q))
    if glu_act and Cp % 2:
        die("tensor '%sD': %d rows cannot come from a glu activation" % (q, Cp))
    channels = Cp // 2 if glu_act else Cp
    lin_base = None
    for cand in ("output_linear.0.", "output_linear."):
        if b + "layer." + cand + "weight" in sd:
            lin_base = "layer." + cand
            break
    final_act = infer_final_act(sd, b + lin_base + "weight" if lin_base else None, H, args)

    def want(h):
        s = 1 if n_ssm == 1 else h if n_ssm is None else n_ssm
        leg = "the S4 layer (mode %s, n_ssm %s, channels %d%s) of width %d" % (
            "diag" if diag else "dplr", "null" if n_ssm is None else n_ssm, channels,
            ", bidirectional" if bidirectional else "", h)
        w = {"layer.layer.D": ([(Cp, h)], leg),
             "layer.layer.kernel.inv_dt": ([(h, 1)], leg + " (dt_tie)"),
             "layer.layer.kernel.A_real": ([(s, Nh)], leg),
             "layer.layer.kernel.A_imag": ([(s, Nh)], leg),
             "layer.layer.kernel.B": ([(1, s, Nh, 2)], leg),
             "layer.layer.kernel.C": ([(Cpp, h, Nh, 2)], leg)}
        if not diag:
            w["layer.layer.kernel.P"] = ([(rank, s, Nh, 2)], leg + " rank %d" % rank)
            w["layer.layer.kernel.l_kernel"] = ([()], "an int64 scalar")
        if lin_base is not None:
            rows = 2 * h if final_act == "glu" else h
            f_in = Cp * h // 2 if glu_act else Cp * h
            lw = "final_act %s: the output linear (%d, %d)" % (final_act, rows, f_in)
            w[lin_base + "weight"] = ([(rows, f_in), (rows, f_in, 1)], lw)
            w[lin_base + "bias"] = ([(rows,)], lw)
        return w

    cfg = {"l_max": args.l_max, "mode": "diag" if diag else "dplr",
           "init": init_name(args, diag), "rank": 1 if diag else rank, "n_ssm": n_ssm,
           "channels": channels, "activation": args.layer_activation, "final_act": final_act,
           "swap_channels": bool(args.swap_channels), "dt_min": args.dt_min,
           "dt_max": args.dt_max, "dt_tie": True, "dt_transform": args.dt_transform,
           "real_transform": args.real_transform, "imag_transform": args.imag_transform,
           "disc": args.disc if diag else "bilinear", "dt_fast": False, "bandlimit": None,
           "is_real": False, "_bidirectional": bidirectional}
    return cfg, want


def check_expected(sd, want, what):
    """Every expected tensor present with an allowed shape and dtype, nothing else."""
    for name, (shapes, legend) in want.items():
        got = shape(sd, name)
        if got not in [tuple(s) for s in shapes]:
            die("tensor '%s': shape %s contradicts %s = %s implied by the other tensors"
                % (name, got, legend, " or ".join(str(tuple(s)) for s in shapes)))
        t = sd[name]
        if name.endswith(".l_kernel"):
            if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
                die("tensor '%s': dtype %s, expected an integer scalar" % (name, t.dtype))
        elif not t.dtype.is_floating_point:
            die("tensor '%s': dtype %s, expected floating point" % (name, t.dtype))
    for k in sorted(sd):
        if k not in want:
            die("unexpected tensor '%s' (not part of the %s the other tensors describe)"
                % (k, what))


def infer_sashimi_model(sd, args):
    config, want = infer_sashimi(sd, "", args)
    check_expected(sd, want, "Sashimi")
    return config


def infer_sashimi_lm(sd, args):
    if "encoder.bias" in sd:
        die("unexpected tensor 'encoder.bias' (a SashimiLM's encoder is an Embedding, "
            "without bias)")
    n_tokens, H = shape_nd(sd, "encoder.weight", 2, "(n_tokens, d_model) (an Embedding)")
    backbone, want = infer_sashimi(sd, "backbone.", args)
    if backbone["d_model"] != H:
        die("tensor 'encoder.weight': shape %s, but the backbone's d_model is %d "
            "(backbone.norm.weight)" % ((n_tokens, H), backbone["d_model"]))
    leg = "(n_tokens, d_model) of the Embedding 'encoder.weight'"
    want["encoder.weight"] = ([(n_tokens, H)], "the Embedding (n_tokens, d_model)")
    want["decoder.weight"] = ([(n_tokens, H)], leg)
    want["decoder.bias"] = ([(n_tokens,)], "(n_tokens,)")
    check_expected(sd, want, "SashimiLM")
    return {"architecture": "SashimiLM", "n_tokens": n_tokens, "backbone": backbone,
            "sample_rate": args.sample_rate, "quantization": "mu-law"}


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


TRANSFORMS = ["none", "exp", "relu", "sigmoid", "softplus"]


def main(argv):
    ap = argparse.ArgumentParser(prog="s4-convert.py", description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("outdir")
    ap.add_argument("--prenorm", action="store_true",
                    help="S4Model: the model was built with prenorm=True")
    ap.add_argument("--dropout", type=float, default=None,
                    help="recorded only (training); default 0.1 (S4Model), 0.0 (Sashimi)")
    ap.add_argument("--layer-activation", "--activation", dest="layer_activation",
                    default="gelu", help="S4Block activation (gelu, relu, glu, ...; default gelu)")
    ap.add_argument("--l-max", type=int, default=None, help="S4Block l_max (default None)")
    ap.add_argument("--dt-min", type=float, default=0.001)
    ap.add_argument("--dt-max", type=float, default=0.1)
    ap.add_argument("--disc", default="zoh", choices=["zoh", "bilinear", "dss"],
                    help="S4Block in mode diag: its discretization (default zoh; mode dplr "
                    "records bilinear, which it always uses)")
    ap.add_argument("--init", default=None,
                    help="S4Block init, recorded (default legs; diag-lin in mode diag)")
    ap.add_argument("--dt-transform", default="exp", choices=TRANSFORMS,
                    help="S4Block dt_transform (default exp)")
    ap.add_argument("--real-transform", default="exp", choices=TRANSFORMS,
                    help="S4Block real_transform (default exp)")
    ap.add_argument("--imag-transform", default="none", choices=TRANSFORMS,
                    help="S4Block imag_transform (default none)")
    ap.add_argument("--swap-channels", action="store_true", help="S4Block swap_channels=True")
    ap.add_argument("--final-act", default=None,
                    help="S4Block final_act; default inferred: glu (output linear 2 d_model "
                    "rows), id (d_model rows), null (no output linear)")
    ap.add_argument("--sample-rate", type=int, default=16000,
                    help="SashimiLM: the audio sample rate recorded (default 16000)")
    args = ap.parse_args(argv)
    sd = load_state_dict(args.checkpoint)
    sd, prefix = strip_common_prefix(sd)
    if prefix:
        print("s4-convert: every name starts with '%s': stripped" % prefix)
    arch = detect(sd)
    if arch == "Sashimi":
        config = infer_sashimi_model(sd, args)
    elif arch == "SashimiLM":
        config = infer_sashimi_lm(sd, args)
    else:
        config = infer(sd, args)
    if not os.path.isdir(args.outdir):
        os.makedirs(args.outdir, exist_ok=True)
    cfg_text = json.dumps(config, indent=1) + "\n"
    st = safetensors_bytes(sd, {"config": json.dumps(config)})
    write_atomic(os.path.join(args.outdir, "params.safetensors"), st)
    write_atomic(os.path.join(args.outdir, "config.json"), cfg_text.encode())
    if arch in ("Sashimi", "SashimiLM"):
        bb = config if arch == "Sashimi" else config["backbone"]
        print("s4-convert: %s -> %s/params.safetensors, %s/config.json (%s%s, d_model %d, "
              "n_layers %d, pool %s, expand %d, ff %d%s, S4 %s)"
              % (args.checkpoint, args.outdir, args.outdir, arch,
                 " n_tokens %d" % config["n_tokens"] if arch == "SashimiLM" else "",
                 bb["d_model"], bb["n_layers"], bb["pool"], bb["expand"], bb["ff"],
                 ", unet" if bb["unet"] else "", bb["s4"]["mode"]))
        return
    print("s4-convert: %s -> %s/params.safetensors, %s/config.json (S4Model, %s layers x %d, "
          "d_model %d)" % (args.checkpoint, args.outdir, args.outdir, config["layer"]["class"],
                           config["n_layers"], config["d_model"]))


if __name__ == "__main__":
    main(sys.argv[1:])
