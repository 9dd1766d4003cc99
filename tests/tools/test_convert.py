#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""ctest test_convert: tools/s4-convert.py on every golden model.pth (tests/data/models).

For each case: the converter's params.safetensors must hold the same tensors (names,
shapes, values bit for bit) as the case's params.safetensors, its config.json must load, and
`s4 forward` on the converted files must give the reference's logits (y_f64) within 1e-4 in
convolution mode and, where the model has one, in recurrent mode. Then hostile checkpoints
are refused with a message naming the tensor, and no file is left behind.
Exit 77 (ctest: skipped) with a message when python3-torch is absent.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError as e:
    print("SKIPPED: test_convert needs python3-torch and python3-numpy "
          "(apt-get install python3-torch python3-numpy): %s" % e)
    sys.exit(77)

S4, CONVERTER, DATA = sys.argv[1], sys.argv[2], sys.argv[3]
TOL = 1e-4


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        dt = {"F32": "<f4", "F64": "<f8", "I64": "<i8"}[h["dtype"]]
        a, b = h["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=dt).reshape(h["shape"])
    return out, header.get("__metadata__", {})


def run(args, expect_ok=True):
    p = subprocess.run(args, capture_output=True, text=True)
    if expect_ok and p.returncode != 0:
        sys.exit("FAILED: %s\n%s%s" % (" ".join(args), p.stdout, p.stderr))
    return p


def main():
    cases = json.load(open(os.path.join(DATA, "cases.json")))["cases"]
    worst = {"conv": 0.0, "recurrent": 0.0}
    tmp = tempfile.mkdtemp(prefix="s4convert_")
    try:
        for c in cases:
            d = os.path.join(DATA, c["dir"])
            out = os.path.join(tmp, c["name"])
            cfg_ref = json.load(open(os.path.join(d, "config.json")))
            opts = ["--prenorm"] if cfg_ref["prenorm"] else []
            run(["/usr/bin/python3", CONVERTER, os.path.join(d, "model.pth"), out] + opts)
            got, meta = read_safetensors(os.path.join(out, "params.safetensors"))
            want, _ = read_safetensors(os.path.join(d, "params.safetensors"))
            if sorted(got) != sorted(want):
                sys.exit("FAILED %s: tensor names differ: %s" % (c["name"],
                         sorted(set(got) ^ set(want))))
            for k in want:
                if got[k].shape != want[k].shape or got[k].dtype != want[k].dtype or \
                        not np.array_equal(got[k], want[k]):
                    sys.exit("FAILED %s: tensor '%s' differs" % (c["name"], k))
            cfg = json.load(open(os.path.join(out, "config.json")))
            for k in ("d_input", "d_output", "d_model", "n_layers", "prenorm"):
                if cfg[k] != cfg_ref[k]:
                    sys.exit("FAILED %s: config '%s' = %r, the case has %r"
                             % (c["name"], k, cfg[k], cfg_ref[k]))
            if "config" not in meta:
                sys.exit("FAILED %s: no __metadata__ config" % c["name"])
            y64 = np.load(os.path.join(d, "y_f64.npy"))
            modes = ["conv"] + (["recurrent"] if c["recurrent"] else [])
            line = "%-46s tensors identical" % c["name"]
            for mode in modes:
                y = os.path.join(out, "y_%s.npy" % mode)
                run([S4, "forward", "--weights", os.path.join(out, "params.safetensors"),
                     "--config", os.path.join(out, "config.json"),
                     "--input", os.path.join(d, "x.npy"), "--output", y, "--mode", mode])
                e = float(np.max(np.abs(np.load(y) - y64)) / np.max(np.abs(y64)))
                worst[mode] = max(worst[mode], e)
                line += "  %s %.2e" % (mode, e)
                if not e <= TOL:
                    sys.exit("FAILED %s: %s logits %.3e off y_f64" % (c["name"], mode, e))
            if not c["recurrent"]:
                p = run([S4, "forward", "--weights", os.path.join(out, "params.safetensors"),
                         "--input", os.path.join(d, "x.npy"), "--output",
                         os.path.join(out, "no.npy"), "--mode", "recurrent"], expect_ok=False)
                if p.returncode == 0 or "bidirectional" not in p.stderr or \
                        os.path.exists(os.path.join(out, "no.npy")):
                    sys.exit("FAILED %s: recurrent mode of a bidirectional model not refused "
                             "cleanly: %s" % (c["name"], p.stderr))
                line += "  recurrent refused (bidirectional)"
            print(line)

        # example.py's own checkpoint dict ({'model': state_dict, 'acc', 'epoch'}: Python
        # floats, which torch 1.13's weights_only loader refuses) gives the same tensors.
        base = torch.load(os.path.join(DATA, "s4block_legs_in3_h8_n16_l64", "model.pth"),
                          weights_only=True)
        pth = os.path.join(tmp, "example_ckpt.pth")
        torch.save({"model": base, "acc": 87.5, "epoch": 12}, pth)
        od = os.path.join(tmp, "example_ckpt")
        run(["/usr/bin/python3", CONVERTER, pth, od])
        got, _ = read_safetensors(os.path.join(od, "params.safetensors"))
        want, _ = read_safetensors(os.path.join(DATA, "s4block_legs_in3_h8_n16_l64",
                                                "params.safetensors"))
        if sorted(got) != sorted(want) or any(not np.array_equal(got[k], want[k]) for k in want):
            sys.exit("FAILED: example.py's checkpoint dict converted to different tensors")
        print("example.py checkpoint dict {'model', 'acc', 'epoch'}: tensors identical")

        # Hostile checkpoints: each refused naming the tensor; the output dir stays empty.
        base = torch.load(os.path.join(DATA, "s4d_h8_n16_l100", "model.pth"), weights_only=True)
        variants = {
            "missing": ({k: v for k, v in base.items() if k != "norms.1.bias"}, "norms.1.bias"),
            "misshapen": (dict(base, **{"decoder.bias": torch.zeros(3)}), "decoder.bias"),
            "extra": (dict(base, **{"head.weight": torch.zeros(2)}), "head.weight"),
            "layer_shape": (dict(base, **{"s4_layers.1.kernel.log_dt": torch.zeros(5)}),
                            "s4_layers.1.kernel.log_dt"),
            "unknown_class": ({k: v for k, v in base.items()
                               if not k.startswith("s4_layers.0.kernel.log_dt")},
                              "s4_layers.0.kernel.log_dt"),
        }
        for name, (sd, needle) in variants.items():
            pth = os.path.join(tmp, name + ".pth")
            torch.save({"model": sd, "acc": 0.5, "epoch": 3}, pth)
            od = os.path.join(tmp, "out_" + name)
            os.makedirs(od)
            p = run(["/usr/bin/python3", CONVERTER, pth, od], expect_ok=False)
            if p.returncode == 0 or needle not in p.stderr:
                sys.exit("FAILED hostile '%s': not refused naming '%s': %s"
                         % (name, needle, p.stderr))
            if os.listdir(od):
                sys.exit("FAILED hostile '%s': left files %s" % (name, os.listdir(od)))
            print("refused %-14s %s" % (name, p.stderr.strip()))
        # A checkpoint whose pickle would run code (and a float, so the restricted unpickler
        # is the one that must refuse it): refused, and the code never runs.
        class Evil:
            def __reduce__(self):
                return (os.system, ("touch %s" % os.path.join(tmp, "pwned"),))
        pth = os.path.join(tmp, "evil.pth")
        torch.save({"model": dict(base), "acc": 0.5, "hook": Evil()}, pth)
        p = run(["/usr/bin/python3", CONVERTER, pth, os.path.join(tmp, "evil_out")],
                expect_ok=False)
        if p.returncode == 0 or os.path.exists(os.path.join(tmp, "pwned")):
            sys.exit("FAILED: a checkpoint with code in its pickle was run or accepted")
        print("refused %-14s %s" % ("code in pickle", p.stderr.strip()))
        # A checkpoint that is not a state_dict at all.
        pth = os.path.join(tmp, "notsd.pth")
        torch.save([1, 2, 3], pth)
        p = run(["/usr/bin/python3", CONVERTER, pth, os.path.join(tmp, "x")], expect_ok=False)
        if p.returncode == 0:
            sys.exit("FAILED: a list was accepted as a checkpoint")
    finally:
        shutil.rmtree(tmp)
    print("SUMMARY converted models through s4 forward vs y_f64: conv %.2e, recurrent %.2e "
          "(bound %.0e)" % (worst["conv"], worst["recurrent"], TOL))
    print("%d passed, 0 failed" % (len(cases) + len(variants) + 3))


main()
