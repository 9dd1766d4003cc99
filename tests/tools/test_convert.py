#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""ctest test_convert: tools/s4-convert.py on every golden model.pth (tests/data/models and
tests/data/models_sashimi).

    test_convert.py S4 CONVERTER DATA [SASHIMI_DATA]

S4Model (DATA = tests/data/models): for each case, the converter's params.safetensors must hold
the same tensors (names, shapes, values bit for bit) as the case's params.safetensors, its
config.json must load, and `s4 forward` on the converted files must give the reference's logits
(y_f64) within 1e-4 in convolution mode and, where the model has one, in recurrent mode. Then
hostile checkpoints are refused with a message naming the tensor, and no file is left behind.

Sashimi and SashimiLM (SASHIMI_DATA, by default DATA's sibling `models_sashimi`): each case's
model.pth is converted with the options that reproduce the case's config (derived from its
config in cases.json: what the tensors cannot tell); the tensors must equal the case's
params.safetensors bit for bit (names, dtypes, shapes; the int64 l_kernel scalars included)
and config.json (and the safetensors' __metadata__ config) the case's config.json as parsed
JSON. Then `s4 forward --weights W --config C --input X --output Y [--mode recurrent]` on the
converted files must match y_f64.npy (Sashimi: x.npy float32 (B, L, d_model) in) or
logits_f64.npy (SashimiLM: tokens.npy int64 (B, L) in, logits (B, L, n_tokens) out) within the
case's tolerance_rel, max|y - ref| / max|ref|, in convolution and recurrent mode (a case with
recurrent "refuse" must be refused cleanly). With S4_CONVERT_SKIP_SASHIMI_CLI=1 in the
environment only these Sashimi `s4 forward` runs are skipped, with a printed note. Checkpoint
wrappers (example.py's dict, a Lightning dict with a `model.` prefix) and hostile Sashimi
checkpoints (refused naming the tensor, nothing written) follow.
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
SASHIMI = sys.argv[4] if len(sys.argv) > 4 else \
    os.path.join(os.path.dirname(os.path.abspath(DATA)), "models_sashimi")
SKIP_SASHIMI_CLI = os.environ.get("S4_CONVERT_SKIP_SASHIMI_CLI") == "1"
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


# ---------------------------------------------------------------------------------------------
# Sashimi / SashimiLM

def canon(obj):
    """JSON text with sorted keys: equal iff the parsed JSON is equal, types included
    (Python's == would take false for 0 and 1.0 for 1)."""
    return json.dumps(obj, sort_keys=True)


def sashimi_options(config):
    """The converter options that reproduce a case's config: what the tensors cannot tell."""
    arch = config["architecture"]
    bb = config["backbone"] if arch == "SashimiLM" else config
    s4 = bb["s4"]
    opts = ["--dropout", repr(float(bb["dropout"])),
            "--layer-activation", s4["activation"], "--init", s4["init"],
            "--dt-min", repr(s4["dt_min"]), "--dt-max", repr(s4["dt_max"]),
            "--dt-transform", s4["dt_transform"], "--real-transform", s4["real_transform"],
            "--imag-transform", s4["imag_transform"], "--disc", s4["disc"]]
    if s4["l_max"] is not None:
        opts += ["--l-max", str(s4["l_max"])]
    if s4["swap_channels"]:
        opts += ["--swap-channels"]
    if arch == "SashimiLM":
        opts += ["--sample-rate", str(config["sample_rate"])]
    return opts


def same_tensors(got, want, label):
    if sorted(got) != sorted(want):
        sys.exit("FAILED %s: tensor names differ: %s" % (label, sorted(set(got) ^ set(want))))
    for k in want:
        if got[k].shape != want[k].shape or got[k].dtype != want[k].dtype or \
                got[k].tobytes() != want[k].tobytes():
            sys.exit("FAILED %s: tensor '%s' differs (%s %s vs %s %s)"
                     % (label, k, got[k].dtype, got[k].shape, want[k].dtype, want[k].shape))


def sashimi_forward(case_dir, c, out, worst):
    """`s4 forward` on the converted files against the reference's float64 output."""
    f = c["files"]
    x = os.path.join(case_dir, f["input"])
    ref = np.load(os.path.join(case_dir, f["conv_f64"]))
    tol = c.get("tolerance_rel", TOL)
    base = [S4, "forward", "--weights", os.path.join(out, "params.safetensors"),
            "--config", os.path.join(out, "config.json"), "--input", x]
    text = ""
    modes = ["conv"] + (["recurrent"] if c["recurrent"] == "golden" else [])
    for mode in modes:
        y = os.path.join(out, "y_%s.npy" % mode)
        run(base + ["--output", y] + (["--mode", "recurrent"] if mode == "recurrent" else []))
        got = np.load(y)
        if got.shape != ref.shape:
            sys.exit("FAILED %s: %s output shape %s, the reference's is %s"
                     % (c["name"], mode, got.shape, ref.shape))
        e = float(np.max(np.abs(got.astype(np.float64) - ref)) / np.max(np.abs(ref)))
        worst[mode] = max(worst[mode], e)
        text += "  %s %.2e" % (mode, e)
        if not e <= tol:
            sys.exit("FAILED %s: %s output %.3e off %s (bound %.0e)"
                     % (c["name"], mode, e, f["conv_f64"], tol))
    if c["recurrent"] != "golden":
        no = os.path.join(out, "no.npy")
        p = run(base + ["--output", no, "--mode", "recurrent"], expect_ok=False)
        if p.returncode == 0 or os.path.exists(no):
            sys.exit("FAILED %s: recurrent mode not refused cleanly: %s" % (c["name"], p.stderr))
        text += "  recurrent refused"
    return text


def refused(name, sd, needle, tmp, wrap=True):
    """A hostile checkpoint: refused with a message naming `needle`, nothing written."""
    pth = os.path.join(tmp, "sashimi_" + name + ".pth")
    torch.save({"model": sd, "acc": 0.5, "epoch": 3} if wrap else sd, pth)
    od = os.path.join(tmp, "sashimi_out_" + name)
    os.makedirs(od)
    p = run(["/usr/bin/python3", CONVERTER, pth, od], expect_ok=False)
    if p.returncode == 0 or needle not in p.stderr:
        sys.exit("FAILED hostile Sashimi '%s': not refused naming '%s': %s%s"
                 % (name, needle, p.stdout, p.stderr))
    if os.listdir(od):
        sys.exit("FAILED hostile Sashimi '%s': left files %s" % (name, os.listdir(od)))
    print("refused %-22s %s" % (name, p.stderr.strip()))


def sashimi_tests(tmp):
    """Returns (checks passed, worst conv / recurrent errors)."""
    worst = {"conv": 0.0, "recurrent": 0.0}
    if not os.path.isfile(os.path.join(SASHIMI, "cases.json")):
        sys.exit("FAILED: no Sashimi goldens at %s (cases.json)" % SASHIMI)
    cases = json.load(open(os.path.join(SASHIMI, "cases.json")))["cases"]
    if SKIP_SASHIMI_CLI:
        print("NOTE: S4_CONVERT_SKIP_SASHIMI_CLI=1: the Sashimi `s4 forward` comparisons are "
              "skipped (conversion, tensors and config are still checked)")
    passed = 0
    for c in cases:
        d = os.path.join(SASHIMI, c["name"])
        out = os.path.join(tmp, "sashimi_" + c["name"])
        cfg_file = json.load(open(os.path.join(d, c["files"]["config"])))
        if canon(cfg_file) != canon(c["config"]):
            sys.exit("FAILED %s: cases.json's config and config.json differ" % c["name"])
        run(["/usr/bin/python3", CONVERTER, os.path.join(d, c["files"]["pth"]), out] +
            sashimi_options(c["config"]))
        got, meta = read_safetensors(os.path.join(out, "params.safetensors"))
        want, _ = read_safetensors(os.path.join(d, c["files"]["params"]))
        same_tensors(got, want, c["name"])
        cfg = json.load(open(os.path.join(out, "config.json")))
        if canon(cfg) != canon(cfg_file):
            sys.exit("FAILED %s: config.json differs from the case's:\n%s\n%s"
                     % (c["name"], canon(cfg), canon(cfg_file)))
        if "config" not in meta or canon(json.loads(meta["config"])) != canon(cfg_file):
            sys.exit("FAILED %s: __metadata__ config missing or not the case's" % c["name"])
        line = "%-46s tensors identical, config equal" % c["name"]
        if SKIP_SASHIMI_CLI:
            line += "  (s4 forward skipped)"
        else:
            line += sashimi_forward(d, c, out, worst)
        print(line)
        passed += 1

    # Wrappers: example.py's dict and a Lightning checkpoint ('state_dict', names under
    # 'model.', Python floats and ints beside it) give the same files as the bare state_dict.
    name = "lm_d8_p44_n1"
    c = [c for c in cases if c["name"] == name][0]
    base = torch.load(os.path.join(SASHIMI, name, "model.pth"), weights_only=True)
    want, _ = read_safetensors(os.path.join(SASHIMI, name, "params.safetensors"))
    for label, obj in (("example.py dict", {"model": base, "acc": 0.5, "epoch": 3}),
                       ("Lightning dict", {"state_dict": {"model." + k: v
                                                          for k, v in base.items()},
                                           "epoch": 3, "global_step": 120,
                                           "hparams": {"lr": 0.004}})):
        pth = os.path.join(tmp, "sashimi_wrap.pth")
        torch.save(obj, pth)
        od = os.path.join(tmp, "sashimi_wrap_" + label.split()[0].replace(".", "_"))
        run(["/usr/bin/python3", CONVERTER, pth, od] + sashimi_options(c["config"]))
        got, _ = read_safetensors(os.path.join(od, "params.safetensors"))
        same_tensors(got, want, "%s (%s)" % (name, label))
        if canon(json.load(open(os.path.join(od, "config.json")))) != canon(c["config"]):
            sys.exit("FAILED %s (%s): config differs" % (name, label))
        print("%s of %s: tensors identical, config equal" % (label, name))
        passed += 1
    # A prefix that is not common to every name is ambiguous: refused.
    mixed = {("model." if i % 2 else "ema.") + k: v for i, (k, v) in enumerate(base.items())}
    pth = os.path.join(tmp, "sashimi_mixed.pth")
    torch.save({"state_dict": mixed, "epoch": 3}, pth)
    od = os.path.join(tmp, "sashimi_mixed_out")
    p = run(["/usr/bin/python3", CONVERTER, pth, od], expect_ok=False)
    if p.returncode == 0 or "no known architecture" not in p.stderr or os.path.exists(od):
        sys.exit("FAILED: a state_dict with two prefixes was not refused: %s" % p.stderr)
    print("refused %-22s %s" % ("two prefixes", p.stderr.strip()))
    passed += 1

    # Hostile Sashimi / SashimiLM checkpoints.
    unet = torch.load(os.path.join(SASHIMI, "s_d6_p23_unet_n1", "model.pth"), weights_only=True)
    plain = torch.load(os.path.join(SASHIMI, "s_d4_p2_n2_ff0_lmax16_softplus", "model.pth"),
                       weights_only=True)
    lm = base

    def without(sd, *names):
        return {k: v for k, v in sd.items() if k not in names}

    def drop_block(sd, prefix):
        return {k: v for k, v in sd.items() if not k.startswith(prefix)}

    variants = {
        # DownPool weights: not (d expand, d pool, 1) at width 12; a pool its UpPool denies.
        "downpool_shape": (dict(unet, **{"d_layers.5.linear.weight": torch.zeros(24, 30, 1)}),
                           "d_layers.5.linear.weight"),
        "downpool_vs_uppool": (dict(unet, **{"d_layers.5.linear.weight":
                                             torch.zeros(24, 24, 1)}),
                               "d_layers.5.linear.weight"),
        "downpool_expand": (dict(plain, **{"d_layers.0.linear.weight": torch.zeros(12, 8, 1)}),
                            "d_layers.0.linear.weight"),
        "missing_u_norm": (without(unet, "u_layers.1.1.norm.bias"), "u_layers.1.1.norm.bias"),
        "missing_u_norm_plain": (without(plain, "u_layers.0.2.norm.weight"),
                                 "u_layers.0.2.norm.weight"),
        "missing_ff_block": (drop_block(unet, "u_layers.0.2."), "u_layers.0.2.norm.weight"),
        "extra_top": (dict(unet, **{"head.weight": torch.zeros(2)}), "head.weight"),
        "extra_in_block": (dict(plain, **{"c_layers.1.layer.layer.kernel.Q":
                                          torch.zeros(1, 8, 32, 2)}),
                           "c_layers.1.layer.layer.kernel.Q"),
        "extra_up_block": (dict(plain, **{"u_layers.0.3.norm.weight": torch.zeros(4),
                                          "u_layers.0.3.norm.bias": torch.zeros(4)}),
                           "u_layers.0.3.norm"),
        "s4_n_ssm": (dict(unet, **{"u_layers.0.1.layer.layer.kernel.A_real":
                                   torch.zeros(2, 32)}),
                     "u_layers.0.1.layer.layer.kernel.A_real"),
        "ff_shape": (dict(unet, **{"d_layers.4.layer.ff.2.weight": torch.zeros(12, 36, 1)}),
                     "d_layers.4.layer.ff.2.weight"),
        "l_kernel_float": (dict(plain, **{"c_layers.0.layer.layer.kernel.l_kernel":
                                          torch.tensor(0.0)}),
                           "c_layers.0.layer.layer.kernel.l_kernel"),
        "lm_encoder_bias": (dict(lm, **{"encoder.bias": torch.zeros(8)}), "encoder.bias"),
        "lm_decoder_tokens": (dict(lm, **{"decoder.bias": torch.zeros(255)}), "decoder.bias"),
        "lm_encoder_width": (dict(lm, **{"encoder.weight": torch.zeros(256, 6)}),
                             "encoder.weight"),
    }
    for name, (sd, needle) in variants.items():
        refused(name, sd, needle, tmp)
        passed += 1
    return passed, worst


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

        n_sashimi, worst_sashimi = sashimi_tests(tmp)
    finally:
        shutil.rmtree(tmp)
    print("SUMMARY converted models through s4 forward vs y_f64: conv %.2e, recurrent %.2e "
          "(bound %.0e)" % (worst["conv"], worst["recurrent"], TOL))
    if SKIP_SASHIMI_CLI:
        print("SUMMARY Sashimi / SashimiLM: converted bit for bit; s4 forward skipped "
              "(S4_CONVERT_SKIP_SASHIMI_CLI=1)")
    else:
        print("SUMMARY converted Sashimi / SashimiLM through s4 forward vs y_f64 / logits_f64: "
              "conv %.2e, recurrent %.2e (bound %.0e)"
              % (worst_sashimi["conv"], worst_sashimi["recurrent"], TOL))
    print("%d passed, 0 failed" % (len(cases) + len(variants) + 3 + n_sashimi))


main()
