#!/usr/bin/env python3
"""Draws the GPU benchmark's headline chart (end-to-end index build time, CPU over HTTP vs GPU
over the direct path, with recall@10) as a self-contained SVG from `vlake bench gpu`'s JSON
line. No third-party packages: it runs on the device machine and here alike.

    gpu_chart.py result.json chart.svg
"""
import json
import sys
from xml.sax.saxutils import escape


def bars(result):
    out = []
    for label, cpu_key, gpu_key, cpu_recall, gpu_recall in (
            ("IVF_PQ", "ivfpq_cpu_http_s", "ivfpq_gpu_direct_s", "recall_ivfpq_cpu",
             "recall_ivfpq_gpu"),
            ("HNSW / CAGRA", "hnsw_cpu_http_s", "cagra_gpu_direct_s", "recall_hnsw",
             "recall_cagra")):
        out.append((label, result.get(cpu_key), result.get(gpu_key), result.get(cpu_recall),
                     result.get(gpu_recall)))
    return out


def render(result):
    rows = bars(result)
    longest = max([v for r in rows for v in (r[1], r[2]) if isinstance(v, (int, float))] + [1e-9])
    width, left, bar_h, gap = 760, 150, 26, 22
    height = 90 + len(rows) * (2 * bar_h + gap) + 40
    scale = (width - left - 170) / longest
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="13">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="24" text-anchor="middle" font-size="16">'
           f'End-to-end index build (fetch + build), {escape(str(result.get("device")))}</text>',
           f'<text x="{width / 2}" y="44" text-anchor="middle" fill="#555">'
           f'CPU ({result.get("cpu_threads")} threads) fed over HTTP vs GPU fed over the direct '
           f'path; seconds, lower is better</text>']
    y = 70
    for label, cpu, gpu, rc, rg in rows:
        svg.append(f'<text x="10" y="{y + bar_h + 4}" font-weight="bold">{escape(label)}</text>')
        for who, value, recall, color in (("CPU/HTTP", cpu, rc, "#8c8c8c"),
                                          ("GPU/direct", gpu, rg, "#76b900")):
            if isinstance(value, (int, float)):
                w = max(1.0, value * scale)
                svg.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                           f'fill="{color}"/>')
                text = f"{who}: {value:.1f} s"
                if isinstance(recall, (int, float)):
                    text += f", recall@10 {recall:.3f}"
                svg.append(f'<text x="{left + w + 6:.1f}" y="{y + bar_h - 8}">{escape(text)}</text>')
            else:
                svg.append(f'<text x="{left}" y="{y + bar_h - 8}" fill="#a00">{who}: not run'
                           f'</text>')
            y += bar_h
        if isinstance(cpu, (int, float)) and isinstance(gpu, (int, float)) and gpu > 0:
            svg.append(f'<text x="{width - 10}" y="{y - bar_h + 4}" text-anchor="end" '
                       f'font-weight="bold">{cpu / gpu:.1f}x</text>')
        y += gap
    extra = []
    for key, name in (("kmeans_fraction_of_gemm", "k-means / cuBLAS GEMM rate"),
                      ("gpu_get_fraction_of_h2d", "direct GPU GET / pinned H2D")):
        v = result.get(key)
        extra.append(f"{name}: {v:.2f}" if isinstance(v, (int, float)) else f"{name}: not run")
    svg.append(f'<text x="10" y="{height - 16}" fill="#333">{escape(";  ".join(extra))}</text>')
    svg.append("</svg>")
    return "\n".join(svg) + "\n"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        result = json.loads(f.read().strip().splitlines()[-1])
    with open(sys.argv[2], "w") as f:
        f.write(render(result))


if __name__ == "__main__":
    main()
