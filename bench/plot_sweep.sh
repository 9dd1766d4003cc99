#!/usr/bin/env bash
# Renders an `s4-bench kernel --sweep --json` run as a log-log PNG: kernel time vs L for
# each N, with the O(N L) line through the N = 64 measurement at L = 2^14 and, per N, the
# time the docs/design.md cost model would take at this machine's float32 FMA peak.
#   bench/plot_sweep.sh sweep.json peak_gflops out.png
# Needs gnuplot (Debian: gnuplot-nox) and python3.
set -euo pipefail
json=${1:?sweep.json}
peak=${2:?peak GFLOP/s (s4-bench peak)}
png=${3:-kernel_sweep.png}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

python3 - "$json" "$tmp" <<'PY'
import json, sys, collections
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith('{')]
by_n = collections.defaultdict(list)
for r in rows:
    if r.get('bench') == 'kernel':
        by_n[r['N']].append((r['L'], r['median_s'], r['gflops']))
for n, pts in by_n.items():
    with open(f"{sys.argv[2]}/N{n}.dat", 'w') as f:
        for L, t, g in sorted(pts):
            f.write(f"{L} {t} {g}\n")
ref = [p for p in by_n.get(64, []) if p[0] == 16384] or [sorted(v)[0] for v in by_n.values()]
with open(f"{sys.argv[2]}/ref", 'w') as f:
    f.write(f"{ref[0][1]} {ref[0][0]}\n")
with open(f"{sys.argv[2]}/ns", 'w') as f:
    f.write(' '.join(str(n) for n in sorted(by_n)))
# Least-squares fit of log(time) = a + b log(N L) over every point: b = 1 is linear scaling.
import math
xs = [math.log(n * L) for n, pts in by_n.items() for (L, t, g) in pts]
ys = [math.log(t) for n, pts in by_n.items() for (L, t, g) in pts]
if len(xs) > 1:
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    print(f"fitted exponent of time vs N*L over {len(xs)} points: {b:.3f}")
PY
read -r tref lref < "$tmp/ref"
ns=$(cat "$tmp/ns")
plots=""
for n in $ns; do
  plots+="'$tmp/N$n.dat' using 1:2 with linespoints lw 2 title 'N = $n', "
  # 43 flops per (h, n, l) over H = 256, N/2 states, L/2 + 1 nodes at the measured peak.
  plots+="(43.0*256*($n/2)*(x/2+1))/($peak*1e9) with lines dt 2 lc rgb 'gray' notitle, "
  # O(N L): the N = 64, L = 2^14 time scaled by N/64 and L/2^14.
  plots+="$tref*($n/64.0)*(x/$lref) with lines dt 3 lc rgb 'black' notitle, "
done
plots+="1/0 with lines dt 3 lc rgb 'black' title 'O(N L) through N = 64, L = 2^{14}', "
plots+="1/0 with lines dt 2 lc rgb 'gray' title 'cost model at the FMA peak'"
gnuplot <<GP
set terminal pngcairo size 1000,650 enhanced font 'sans,11'
set output '$png'
set logscale xy 2
set format x '2^{%L}'
set xlabel 'L'
set ylabel 'kernel time [s]  (H = 256, 2 threads)'
set key top left
set grid
set title 'libs4 S4 kernel generation, H = 256, 2 threads (float32 FMA peak $peak GFLOP/s)'
plot $plots
GP
echo "wrote $png"
