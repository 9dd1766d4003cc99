#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Times the reference Sashimi / SashimiLM (state-spaces/s4 models/sashimi/sashimi.py with the
S4Block of models/s4/s4.py, commit e757cef) in PyTorch on the CPU, for the README's comparison
with libs4's generation. The model is written here from the math of DESIGN.md and
tests/data/models_sashimi/README.md, computing what the reference computes in eval mode on a
CPU without pykeops or the CUDA extension: conv mode = FFT convolution (length l_kernel + L) with
the DPLR kernel by the naive Cauchy sums + Woodbury on the reference's FFT nodes (powers of one
complex number), C-tilde formed in the forward for the kernel length as `_setup_C` does; S4D
kernels by the naive Vandermonde product. Step mode = `setup_rnn(mode)`: 'linear' (default) is
the reference's `_setup_linear` / `_step_state_linear` O(N) bilinear step, 'dense' (the default
of the reference's generate.py) and 'diagonal' its other two; S4D steps its diagonal recurrence;
DownPool / UpPool queues. Parameter names are the reference's, so a checkpoint of it loads (and
a checkpoint of this one converts like a trained one). Needs Debian's python3-torch only.
The reference requires opt_einsum, with which torch.einsum contracts the step's 3-operand
einsum in O(N); Debian's torch has no opt_einsum, so that path is written out as two einsums
(--einsum-left-to-right times torch's own order, which forms an (H, 2N, 2N) outer product).

--check DIR runs a case folder of tests/data/models_sashimi in float64 (conv, then step mode
'linear' after C -> C-tilde) and prints max|y - y_ref| / max|y_ref| against the reference's own
float64 goldens; exit status 1 if above 1e-6.
Timing (default): the SC09 model size, float32, reference init (HiPPO-LegS NPLR, rank 1, n_ssm
None = H independent copies, l_max None, dt log-uniform in [1e-3, 1e-1] with dt_transform exp,
C complex N(0, 1), torch default Linear / Embedding init), under torch.no_grad():
  a. autoregressive generation as the reference's generate.py does it (setup once, then per
     sample: embedding -> backbone step -> decoder -> Categorical(logits / 1).sample()),
     --repeat blocks of --gen-samples after --warmup samples, median block rate,
  b. teacher-forced forward (conv mode; the kernel is recomputed per call as in the reference),
     median of --repeat calls after one warm-up call.
Usage: sashimi_torch.py [--check DIR] [--d-model 64] [--n-layers 8] [--pool 4,4] [--expand 2]
[--ff 2] [--B-list 1,16] [--gen-samples 2000] [--warmup 200] [--step-mode linear]
[--einsum-left-to-right] [--forward-B 8 (0: no forward)] [--forward-L 16000] [--threads 2] [--repeat 3]"""
import argparse
import json
import math
import os
import struct
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

_c2r, _r2c = torch.view_as_real, torch.view_as_complex
LEFT_TO_RIGHT = False  # --einsum-left-to-right
KERNEL_SECONDS = [0.0]  # time spent generating S4 kernels in conv mode


def _conj(x):
    return torch.cat([x, x.conj()], dim=-1)


def transform(p, kind):
    if kind == "exp":
        return torch.exp(p)
    if kind == "softplus":
        return F.softplus(p)
    if kind == "relu":
        return F.relu(p) + 1e-4
    if kind == "sigmoid":
        return torch.sigmoid(p)
    assert kind == "none", kind
    return p


def inv_transform(p, kind):
    p = torch.clamp(p, min=1e-4)
    return {"exp": torch.log, "softplus": lambda v: torch.log(torch.exp(v) - 1),
            "sigmoid": torch.logit}.get(kind, lambda v: v)(p)


def matpow(L, A):
    """A^L by repeated squaring (the reference's power(L, A))."""
    out, base = torch.eye(A.shape[-1], dtype=A.dtype).expand_as(A), A
    while True:
        if L % 2:
            out = base @ out
        L //= 2
        if L == 0:
            return out
        base = base @ base


def nplr_legs(N):
    """HiPPO-LegS in NPLR form, kept half (Im Lambda <= 0), Im B clipped to [-2, 2]."""
    q = np.arange(N, dtype=np.float64)
    r = np.sqrt(2 * q + 1)
    A = -np.where(q[:, None] > q[None, :], np.outer(r, r), 0.0) - np.diag(q + 1)
    P = np.sqrt(q + 0.5)
    AP = A + np.outer(P, P)
    w_im, V = np.linalg.eigh(AP * -1j)
    idx = np.argsort(w_im)[: N // 2]
    lam, V = np.mean(np.diag(AP)) + 1j * w_im[idx], V[:, idx]
    B, P = V.conj().T @ r, V.conj().T @ P
    return lam, P, B.real + 1j * np.clip(B.imag, -2, 2)


class SSMKernel(nn.Module):
    """`kernel` of the reference FFTConv: DPLR (SSMKernelDPLR) or diagonal (SSMKernelDiag)."""

    def __init__(self, H, N, channels, mode="dplr", init="legs", rank=1, n_ssm=None, l_max=None,
                 dt_min=1e-3, dt_max=0.1, dt_transform="exp", real_transform="exp",
                 imag_transform="none", disc="bilinear", **unused):
        super().__init__()
        assert not unused.get("dt_fast") and unused.get("bandlimit") is None, unused
        self.H, self.N, self.channels, self.rank, self.l_max = H, N // 2, channels, rank, l_max
        self.dplr, self.disc = mode in ("dplr", "nplr", "s4"), disc
        self.tf = (dt_transform, real_transform, imag_transform)
        S = n_ssm or H
        log_dt = torch.rand(H, 1) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        self.inv_dt = nn.Parameter(log_dt if dt_transform == "exp"
                                   else inv_transform(torch.exp(log_dt), dt_transform))
        if self.dplr or "legs" in init:
            lam, P, B = (torch.tensor(v, dtype=torch.cfloat) for v in nplr_legs(N))
        else:  # diag-lin / diag-inv
            n = torch.arange(N // 2, dtype=torch.float)
            im = N / math.pi * (N / (2 * n + 1) - 1) if "inv" in init else math.pi * n
            lam, B = -0.5 - 1j * im, torch.ones(N // 2, dtype=torch.cfloat)
        self.A_real = nn.Parameter(inv_transform(-lam.real, real_transform).repeat(S, 1))
        self.A_imag = nn.Parameter(inv_transform(-lam.imag, imag_transform).repeat(S, 1))
        self.B = nn.Parameter(_c2r(B.repeat(1, S, 1)).contiguous())
        self.C = nn.Parameter(_c2r(torch.randn(channels, H, N // 2, dtype=torch.cfloat)))
        if self.dplr:
            self.P = nn.Parameter(_c2r(P.repeat(rank, S, 1)).contiguous())
            self.register_buffer("l_kernel", torch.tensor(0))

    def params(self):
        rep = self.H // self.A_real.shape[0]  # feature h uses copy h mod n_ssm
        A = (-transform(self.A_real, self.tf[1]) - 1j * transform(self.A_imag, self.tf[2]))
        dt = transform(self.inv_dt, self.tf[0])
        A, B = A.repeat(rep, 1), _r2c(self.B).repeat(1, rep, 1)
        if not self.dplr:
            return dt, A, B, _r2c(self.C), None, None
        P = _r2c(self.P).repeat(1, rep, 1)
        return dt, A, B, _r2c(self.C), P, P.conj()

    # ---- DPLR: C-tilde, Cauchy kernel, linear step (the reference's algorithms) ----
    def _setup_linear(self):
        dt, A, B, C, P, Q = self.params()
        D = (2.0 / dt - A).reciprocal()
        R = torch.eye(self.rank, dtype=A.dtype) + 2 * torch.einsum("rhn,hn,shn->hrs", Q, D, P).real
        R = torch.linalg.solve(R.to(A.dtype), (Q * D).transpose(0, 1)).transpose(0, 1)
        self.sp = {"D": D, "R": R, "P": P, "Q": Q, "B": B, "E": 2.0 / dt + A}

    def _step_state_linear(self, u, state):
        sp = self.sp
        half = state.size(-1) == self.N  # half state: conj-extend per product, as the reference
        if not half:
            sp = {k: _conj(v) for k, v in sp.items()}

        def cf(p, x, y):  # einsum 'rhn,rhm,...hm->...hn'
            if half:
                p, x, y = _conj(p), _conj(x), _conj(y)
            if LEFT_TO_RIGHT:  # torch without opt_einsum: forms the (r, H, 2N, 2N) outer product
                out = torch.einsum("rhn,rhm,...hm->...hn", p, x, y)
            else:  # opt_einsum's path (the reference requires opt_einsum): O(N)
                out = torch.einsum("rhn,...rh->...hn", p, torch.einsum("rhm,...hm->...rh", x, y))
            return out[..., :self.N] if half else out
        s = sp["E"] * state - cf(sp["P"], sp["Q"], state)
        s = s + 2.0 * sp["B"] * u.unsqueeze(-1)
        return sp["D"] * (s - cf(sp["P"], sp["R"], s))

    def _setup_state(self):
        self._setup_linear()
        cd = self.sp["D"].dtype
        dA = self._step_state_linear(torch.zeros(self.H, dtype=cd),
                                     torch.eye(2 * self.N, dtype=cd).unsqueeze(-2))
        dB = self._step_state_linear(torch.ones(self.H, dtype=cd), torch.zeros(self.H, self.N, dtype=cd))
        return dA.permute(1, 2, 0), _conj(dB)[0]  # (H, 2N, 2N), (H, 2N)

    def _setup_C(self, L):
        lk = int(self.l_kernel)
        double = lk > 0
        if double:
            if L <= lk:
                return
            L = lk
        dA, _ = self._setup_state()
        C_ = _conj(_r2c(self.C))
        prod = torch.einsum("hmn,chn->chm", matpow(L, dA).transpose(-1, -2), C_)
        self.C.copy_(_c2r((C_ + prod if double else C_ - prod)[..., :self.N]))
        self.l_kernel.fill_(2 * lk if double else lk + L)

    def kernel(self, L):
        if not self.dplr:
            dt, A, B, C, _, _ = self.params()
            dtA = dt * A
            C = (B[:, None] * C).view(-1, self.H, self.N)
            if self.disc == "zoh":
                C, x = C * (torch.exp(dtA) - 1.0) / A, dtA
            else:
                C, x = C / (1.0 - dtA / 2) * dt, ((1.0 + dtA / 2) / (1.0 - dtA / 2)).log()
            V = torch.exp(x.unsqueeze(-1) * torch.arange(L).to(x))
            return 2 * torch.einsum("...n,...nl->...l", C, V).real
        if int(self.l_kernel) == 0 and self.l_max:
            self._setup_C(self.l_max)
        while L > int(self.l_kernel):
            self._setup_C(L)
        Lk = int(self.l_kernel)
        dt, A, B, C, P, Q = self.params()
        omega = torch.tensor(np.exp(-2j * np.pi / Lk), dtype=A.dtype) ** torch.arange(Lk // 2 + 1)
        z = 2 * (1 - omega) / (1 + omega)
        w = _conj(A * dt)
        v = _conj(torch.cat([B, P], 0).unsqueeze(-3) * torch.cat([C, Q], 0).unsqueeze(-4) * dt)
        r = (v.unsqueeze(-1) / (z.unsqueeze(-2) - w.unsqueeze(-1))).sum(-2)  # naive Cauchy
        k = self.rank
        if k == 1:
            kf = r[:-1, :-1] - r[:-1, -1:] * r[-1:, :-1] / (1 + r[-1:, -1:])
        else:
            r11 = torch.linalg.inv(torch.eye(k, dtype=r.dtype) + r[-k:, -k:].permute(2, 3, 0, 1))
            kf = r[:-k, :-k] - torch.einsum("ijhn,hnjk,klhn->ilhn", r[:-k, -k:], r11, r[-k:, :-k])
        kf = kf * 2 / (1 + omega)
        return torch.fft.irfft(kf, n=Lk)[..., :L][-1]  # (C'', H, L)

    # ---- step mode ----
    def setup_step(self, mode="linear"):
        dt, A, B, C, _, _ = self.params()
        if not self.dplr:
            dtA = dt * A
            if self.disc == "zoh":
                self.dA, self.dB = torch.exp(dtA), (B * (torch.exp(dtA) - 1.0) / A)[0]
            else:
                self.dA, self.dB = (1.0 + dtA / 2) / (1.0 - dtA / 2), (B / (1.0 - dtA / 2) * dt)[0]
            self.dC = C
            return
        self.dA, self.dB = self._setup_state()
        C, self.mode = _conj(C), mode
        if int(self.l_kernel) > 0:  # C holds C-tilde: recover C
            I = torch.eye(2 * self.N, dtype=C.dtype)
            C = torch.linalg.solve(I - matpow(int(self.l_kernel), self.dA).transpose(-1, -2),
                                   C.unsqueeze(-1)).squeeze(-1)
        self.dC = C
        if mode == "linear":
            self.dC = 2 * C[..., :self.N]
        elif mode == "diagonal":  # eigenbasis of dA
            lam, V = torch.linalg.eig(self.dA)
            self.dA, self.dB = lam, torch.einsum("hnm,hm->hn", torch.linalg.inv(V), self.dB)
            self.dC = torch.einsum("hnm,chn->chm", V, C)

    def default_state(self, batch):
        full = self.dplr and getattr(self, "mode", "linear") != "linear"  # dense / diagonal: 2N
        return torch.zeros(batch, self.H, self.N * (1 + full), dtype=_r2c(self.C).dtype)

    def step(self, u, state):
        if not self.dplr:
            s = self.dA * state + self.dB * u.unsqueeze(-1)
            return 2 * torch.einsum("chn,bhn->bch", self.dC, s).real, s
        if self.mode == "linear":
            s = self._step_state_linear(u, state)
        else:
            eq = "hmn,...hn->...hm" if self.mode == "dense" else "hn,...hn->...hn"
            s = torch.einsum(eq, self.dA, state) + torch.einsum("hn,...h->...hn", self.dB, u)
        return torch.einsum("chn,...hn->...ch", self.dC, s).real, s


class FFTConv(nn.Module):
    def __init__(self, H, activation="gelu", channels=1, l_max=None, bidirectional=False,
                 swap_channels=False, **kernel_args):
        super().__init__()
        assert not bidirectional and not swap_channels and activation in ("gelu", "id", None)
        self.l_max, self.act = l_max, activation
        self.D = nn.Parameter(torch.randn(channels, H))
        self.kernel = SSMKernel(H, 64, channels, l_max=l_max, **kernel_args)

    def forward(self, x):  # (B, H, L) -> (B, C'H, L)
        L = x.size(-1)
        lk = L if self.l_max is None else min(L, round(self.l_max))
        t0 = time.perf_counter()
        k = self.kernel.kernel(lk)
        KERNEL_SECONDS[0] += time.perf_counter() - t0
        y_f = torch.einsum("bhl,chl->bchl", torch.fft.rfft(x, n=lk + L), torch.fft.rfft(k, n=lk + L))
        y = torch.fft.irfft(y_f, n=lk + L)[..., :L] + torch.einsum("bhl,ch->bchl", x, self.D)
        return y.flatten(1, 2)

    def step(self, x, state):
        y, state = self.kernel.step(x, state)
        return (y + x.unsqueeze(-2) * self.D).flatten(1, 2), state


class S4Block(nn.Module):
    def __init__(self, H, final_act="glu", **layer_args):
        super().__init__()
        self.layer = FFTConv(H, **layer_args)
        cH = self.layer.D.shape[0] * H
        self.final_act = final_act
        if final_act is not None:
            self.output_linear = nn.Sequential(nn.Linear(cH, 2 * H if final_act == "glu" else H))

    def post(self, y):  # y (..., C'H), features last
        if self.layer.act == "gelu":
            y = F.gelu(y)
        if self.final_act is not None:
            y = self.output_linear(y)
            if self.final_act == "glu":
                y = F.glu(y, dim=-1)
        return y

    def forward(self, x):  # (B, H, L)
        return self.post(self.layer(x).transpose(-1, -2)).transpose(-1, -2)

    def step(self, x, state):
        y, state = self.layer.step(x, state)
        return self.post(y), state

    def default_state(self, batch):
        return self.layer.kernel.default_state(batch)


class FFBlock(nn.Module):
    def __init__(self, H, expand):
        super().__init__()
        self.ff = nn.Sequential(nn.Sequential(nn.Conv1d(H, H * expand, 1), nn.GELU()),
                                nn.Identity(), nn.Conv1d(H * expand, H, 1))

    def forward(self, x):
        return self.ff(x)

    def step(self, x, state):
        return self.ff(x.unsqueeze(-1)).squeeze(-1), state

    def default_state(self, batch):
        return None


class ResidualBlock(nn.Module):
    def __init__(self, H, layer):
        super().__init__()
        self.layer, self.norm = layer, nn.LayerNorm(H)

    def forward(self, x):
        return x + self.layer(self.norm(x.transpose(-1, -2)).transpose(-1, -2))

    def step(self, x, state):
        z, state = self.layer.step(self.norm(x), state)
        return x + z, state

    def default_state(self, batch):
        return self.layer.default_state(batch)


class DownPool(nn.Module):
    def __init__(self, H, expand, pool):
        super().__init__()
        self.pool, self.linear = pool, nn.Conv1d(H * pool, H * expand, 1)

    def forward(self, x):  # h (l s) -> (h s) l
        B, H, L = x.shape
        return self.linear(x.reshape(B, H, L // self.pool, self.pool).transpose(2, 3)
                           .reshape(B, H * self.pool, L // self.pool))

    def step(self, x, state):
        if x is None:
            return None, state
        state = state + [x]
        if len(state) < self.pool:
            return None, state
        x = torch.stack(state, dim=-1).flatten(-2)  # ... h s -> ... (h s)
        return self.linear(x.unsqueeze(-1)).squeeze(-1), []

    def default_state(self, batch):
        return []


class UpPool(nn.Module):
    def __init__(self, H_in, expand, pool):
        super().__init__()
        self.H, self.pool = H_in // expand, pool
        self.linear = nn.Conv1d(H_in, self.H * pool, 1)

    def forward(self, x):
        x = F.pad(self.linear(x)[..., :-1], (1, 0))  # one coarse step later: causal
        B, _, l = x.shape
        return x.reshape(B, self.H, self.pool, l).transpose(2, 3).reshape(B, self.H, l * self.pool)

    def step(self, x, state):
        y, state = state[0], state[1:]
        if not state:
            x = self.linear(x.unsqueeze(-1)).squeeze(-1)
            state = list(torch.unbind(x.reshape(x.shape[0], self.H, self.pool), dim=-1))
        return y, state

    def default_state(self, batch):
        w = self.linear.weight
        return list(torch.zeros(batch, self.H, self.pool, dtype=w.dtype).unbind(-1))


class Sashimi(nn.Module):
    def __init__(self, d_model=64, n_layers=8, pool=(4, 4), expand=2, ff=2, unet=False,
                 bidirectional=False, dropout=0.0, s4=None, **unused):
        super().__init__()
        assert not bidirectional and dropout == 0.0
        s4, self.unet, H = dict(s4 or {}), unet, d_model

        def blocks(H):
            out = []
            for _ in range(n_layers):
                out.append(ResidualBlock(H, S4Block(H, **s4)))
                if ff > 0:
                    out.append(ResidualBlock(H, FFBlock(H, ff)))
            return out
        d = []
        for p in pool:
            d += blocks(H) if unet else []
            d.append(DownPool(H, expand, p))
            H *= expand
        self.d_layers, self.c_layers = nn.ModuleList(d), nn.ModuleList(blocks(H))
        u = []
        for p in pool[::-1]:
            H //= expand
            u.append(nn.ModuleList([UpPool(H * expand, expand, p)] + blocks(H)))
        self.u_layers, self.norm = nn.ModuleList(u), nn.LayerNorm(H)

    def forward(self, x):  # (B, L, d_model)
        x = x.transpose(1, 2)
        outs = [x]
        for layer in self.d_layers:
            x = layer(x)
            outs.append(x)
        for layer in self.c_layers:
            x = layer(x)
        x = x + outs.pop()
        for block in self.u_layers:
            for layer in block:
                x = layer(x)
                if self.unet:
                    x = x + outs.pop()
                elif isinstance(layer, UpPool):
                    x = x + outs.pop()
                    outs.append(x)
            if not self.unet:
                x = x + outs.pop()
        return self.norm(x.transpose(1, 2))

    def all_layers(self):
        return list(self.d_layers) + list(self.c_layers) + [m for b in self.u_layers for m in b]

    def default_state(self, batch):
        return [m.default_state(batch) for m in self.all_layers()]

    def setup_rnn(self, mode="linear"):
        for m in self.modules():
            if isinstance(m, SSMKernel):
                m.setup_step(mode)

    def step(self, x, state):  # x (B, d_model); state: one entry per all_layers()
        st, outs, i = list(state), [], 0
        for layer in self.d_layers:
            outs.append(x)
            x, st[i] = layer.step(x, st[i])
            i += 1
            if x is None:
                break
        if x is None:  # a pool did not complete: deeper levels wait (their u blocks too)
            deeper = sum(isinstance(m, DownPool) for m in self.d_layers[i:])
            i = len(self.d_layers) + len(self.c_layers) + sum(len(b) for b in self.u_layers[:deeper])
            ublocks = list(self.u_layers)[deeper:]
        else:
            outs.append(x)
            for layer in self.c_layers:
                x, st[i] = layer.step(x, st[i])
                i += 1
            x = x + outs.pop()
            ublocks = list(self.u_layers)
        for block in ublocks:
            for layer in block:
                x, st[i] = layer.step(x, st[i])
                i += 1
                if self.unet:
                    x = x + outs.pop()
                elif isinstance(layer, UpPool):
                    x = x + outs.pop()
                    outs.append(x)
            if not self.unet:
                x = x + outs.pop()
        return self.norm(x), st


class SashimiLM(nn.Module):
    def __init__(self, n_tokens=256, backbone=None, **unused):
        super().__init__()
        self.backbone = Sashimi(**backbone)
        H = self.backbone.norm.weight.shape[0]
        self.encoder, self.decoder = nn.Embedding(n_tokens, H), nn.Linear(H, n_tokens)

    def forward(self, tokens):
        return self.decoder(self.backbone(self.encoder(tokens)))

    def step(self, tok, state):
        x, state = self.backbone.step(self.encoder(tok), state)
        return self.decoder(x), state


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head, data = json.loads(f.read(n)), f.read()
    dt = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "I32": "<i4"}
    return {k: torch.from_numpy(np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]],
                                              dtype=dt[v["dtype"]]).reshape(v["shape"]).copy())
            for k, v in head.items() if k != "__metadata__"}


def check(d):
    cfg = json.load(open(os.path.join(d, "config.json")))
    lm = cfg["architecture"] == "SashimiLM"
    torch.manual_seed(0)
    m = (SashimiLM(**cfg) if lm else Sashimi(**cfg)).eval()
    m.load_state_dict(load_safetensors(os.path.join(d, "params.safetensors")))
    m.double()
    pre = "logits" if lm else "y"
    x = torch.from_numpy(np.load(os.path.join(d, "tokens.npy" if lm else "x.npy")))
    x = x if lm else x.double()
    errs = []
    with torch.no_grad():
        y = m(x)  # conv mode (forms C-tilde; the step below recovers C from it)
        bb = m.backbone if lm else m
        bb.setup_rnn("linear")
        st, ys = bb.default_state(x.shape[0]), []
        for t in range(x.shape[1]):
            yt, st = m.step(x[:, t], st)
            ys.append(yt)
        for name, out in (("conv", y), ("step", torch.stack(ys, 1))):
            ref = np.load(os.path.join(d, "%s_%sf64.npy" % (pre, "" if name == "conv" else "step_")))
            e = np.abs(out.numpy() - ref).max() / np.abs(ref).max()
            errs.append(e)
            print("%s %s: max|y - y_ref|/max|y_ref| = %.3g" % (os.path.basename(d.rstrip("/")), name, e))
    return max(errs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", metavar="DIR")
    for k, v in (("d-model", 64), ("n-layers", 8), ("expand", 2), ("ff", 2), ("gen-samples", 2000),
                 ("warmup", 200), ("forward-B", 8), ("forward-L", 16000), ("threads", 2),
                 ("repeat", 3)):
        ap.add_argument("--" + k, type=int, default=v)
    ap.add_argument("--pool", default="4,4")
    ap.add_argument("--B-list", default="1,16")
    ap.add_argument("--step-mode", default="linear", choices=("linear", "dense", "diagonal"))
    ap.add_argument("--einsum-left-to-right", action="store_true",
                    help="3-operand einsums as torch does without opt_einsum (O(N^2) linear step)")
    a = ap.parse_args()
    global LEFT_TO_RIGHT
    LEFT_TO_RIGHT = a.einsum_left_to_right
    torch.set_num_threads(a.threads)
    if a.check:
        raise SystemExit(0 if check(a.check) <= 1e-6 else 1)
    torch.manual_seed(0)
    pool = [int(p) for p in a.pool.split(",")]
    s4 = {"mode": "dplr", "init": "legs", "rank": 1, "n_ssm": None, "l_max": None}
    m = SashimiLM(256, {"d_model": a.d_model, "n_layers": a.n_layers, "pool": pool,
                        "expand": a.expand, "ff": a.ff, "s4": s4}).eval()
    desc = "torch %s SashimiLM d_model=%d n_layers=%d pool=%s expand=%d ff=%d N=64 (%d params)" % (
        torch.__version__, a.d_model, a.n_layers, a.pool, a.expand, a.ff,
        sum(p.numel() for p in m.parameters()))
    print(desc + ", step mode %s%s, %d threads" % (
        a.step_mode, " (einsum left to right)" if LEFT_TO_RIGHT else "", a.threads))
    with torch.no_grad():
        m.backbone.setup_rnn(a.step_mode)
        for B in (int(b) for b in a.B_list.split(",")):
            st, tok = m.backbone.default_state(B), torch.full((B,), 128, dtype=torch.long)
            rates = []
            for i in range(a.warmup + a.repeat * a.gen_samples):  # one stream, timed in blocks
                if i >= a.warmup and (i - a.warmup) % a.gen_samples == 0:
                    t0 = time.perf_counter()
                logits, st = m.step(tok, st)
                tok = torch.distributions.Categorical(logits=logits / 1.0).sample()
                if i >= a.warmup and (i - a.warmup) % a.gen_samples == a.gen_samples - 1:
                    rates.append(a.gen_samples / (time.perf_counter() - t0))
            rate = sorted(rates)[len(rates) // 2]
            print("torch generate B=%d: %.0f samples/s per stream, %.0f samples/s total "
                  "(%.3fx real time at 16 kHz; median of %s samples/s per stream)"
                  % (B, rate, rate * B, rate * B / 16000, ", ".join("%.0f" % r for r in rates)))
        if a.forward_B <= 0 or a.forward_L <= 0:
            return
        tok = torch.randint(0, 256, (a.forward_B, a.forward_L))
        m(tok)  # warm-up (also forms C-tilde for these lengths, once, as the reference does)
        ts = []
        for _ in range(a.repeat):
            KERNEL_SECONDS[0], t0 = 0.0, time.perf_counter()
            m(tok)
            ts.append((time.perf_counter() - t0, KERNEL_SECONDS[0]))
    t, tk = sorted(ts)[len(ts) // 2]
    print("torch forward (teacher-forced, conv mode) B=%d L=%d: median %.3f s (%.0f samples/s; "
          "S4 kernel generation %.3f s of it)" % (a.forward_B, a.forward_L, t, a.forward_B * a.forward_L / t, tk))


main()
