#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Times example.py's S4Model (minimal S4D layers) in PyTorch on the CPU, for the README's
comparison with `s4-bench model`. The model is written here from the math of docs/models.md
(the same computation as the reference's example.py + models/s4/s4d.py in eval mode: FFT
convolution of length 2L, GELU, Conv1d + GLU, LayerNorm, mean pooling); it needs Debian's
python3-torch only. Usage: s4model_torch.py [--B 64] [--L 1024] [--H 128] [--N 64]
[--layers 4] [--din 3] [--threads 2] [--repeat 3]"""
import argparse
import math
import time

import torch
import torch.nn as nn


class S4DKernel(nn.Module):
    def __init__(self, H, N):
        super().__init__()
        self.log_dt = nn.Parameter(torch.rand(H) * (math.log(0.1) - math.log(0.001))
                                   + math.log(0.001))
        self.C = nn.Parameter(torch.randn(H, N // 2, 2) * 0.5)
        self.log_A_real = nn.Parameter(torch.log(0.5 * torch.ones(H, N // 2)))
        self.A_imag = nn.Parameter(math.pi * torch.arange(N // 2).repeat(H, 1).float())


class S4D(nn.Module):
    """Parameter names as the reference's (kernel.*, D, output_linear.0.*), so a checkpoint
    of this model goes through tools/s4-convert.py like a trained one."""

    def __init__(self, H, N):
        super().__init__()
        self.D = nn.Parameter(torch.randn(H))
        self.kernel = S4DKernel(H, N)
        self.output_linear = nn.Sequential(nn.Conv1d(H, 2 * H, kernel_size=1), nn.GLU(dim=-2))

    def forward(self, u):  # (B, H, L)
        L = u.size(-1)
        k = self.kernel
        dt = torch.exp(k.log_dt)
        C = torch.view_as_complex(k.C)
        A = -torch.exp(k.log_A_real) + 1j * k.A_imag
        dtA = A * dt.unsqueeze(-1)
        K = dtA.unsqueeze(-1) * torch.arange(L, device=A.device)
        C = C * (torch.exp(dtA) - 1.0) / A
        K = 2 * torch.einsum("hn,hnl->hl", C, torch.exp(K)).real
        k_f = torch.fft.rfft(K, n=2 * L)
        u_f = torch.fft.rfft(u, n=2 * L)
        y = torch.fft.irfft(u_f * k_f, n=2 * L)[..., :L]
        y = y + u * self.D.unsqueeze(-1)
        y = nn.functional.gelu(y)
        return self.output_linear(y)


class S4Model(nn.Module):
    def __init__(self, d_input, d_output, H, N, n_layers, prenorm=False):
        super().__init__()
        self.prenorm = prenorm
        self.encoder = nn.Linear(d_input, H)
        self.s4_layers = nn.ModuleList([S4D(H, N) for _ in range(n_layers)])
        self.norms = nn.ModuleList([nn.LayerNorm(H) for _ in range(n_layers)])
        self.decoder = nn.Linear(H, d_output)

    def forward(self, x):  # (B, L, d_input)
        x = self.encoder(x).transpose(-1, -2)
        for layer, norm in zip(self.s4_layers, self.norms):
            z = x
            if self.prenorm:
                z = norm(z.transpose(-1, -2)).transpose(-1, -2)
            z = layer(z)
            x = z + x
            if not self.prenorm:
                x = norm(x.transpose(-1, -2)).transpose(-1, -2)
        return self.decoder(x.transpose(-1, -2).mean(dim=1))


def main():
    ap = argparse.ArgumentParser()
    for k, v in (("B", 64), ("L", 1024), ("H", 128), ("N", 64), ("layers", 4), ("din", 3),
                 ("threads", 2), ("repeat", 3)):
        ap.add_argument("--" + k, type=int, default=v)
    ap.add_argument("--save", help="also torch.save the model's state_dict here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    m = S4Model(a.din, 10, a.H, a.N, a.layers).eval()
    if a.save:
        torch.save(m.state_dict(), a.save)
    for B in (a.B, 1):
        x = torch.randn(B, a.L, a.din)
        with torch.no_grad():
            m(x)
            ts = []
            for _ in range(a.repeat):
                t0 = time.perf_counter()
                m(x)
                ts.append(time.perf_counter() - t0)
        ts.sort()
        print("torch %s S4Model/S4D d_model=%d n_layers=%d N=%d forward B=%d L=%d: median %.4f s"
              % (torch.__version__, a.H, a.layers, a.N, B, a.L, ts[len(ts) // 2]))


main()
