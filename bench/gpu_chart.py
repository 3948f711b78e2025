#!/usr/bin/env python3
"""Draws the GPU benchmark's headline chart (end-to-end index build time with the fetch shaded,
CPU over HTTP vs GPU over the direct path, warm, the cold build in the label; the recall@10 each
index reached and at which search parameters) as a self-contained SVG from `vlake bench gpu`'s
JSON line. No third-party packages: it runs on the device machine and here alike.

    gpu_chart.py result.json chart.svg
"""
import json
import sys
from xml.sax.saxutils import escape


def bars(result):
    """Per workload: label, then per side (who, e2e seconds, fetch seconds, recall note, extra)."""
    details = result.get("details") or {}
    out = []
    for label, workload, cpu_key, gpu_key, cpu_id, gpu_id in (
            ("IVF_PQ", "ivfpq", "ivfpq_cpu_http_s", "ivfpq_gpu_direct_s", "ivfpq_cpu",
             "ivfpq_gpu"),
            ("HNSW / CAGRA", "hnsw", "hnsw_cpu_http_s", "cagra_gpu_direct_s", "hnsw", "cagra")):
        d = details.get(workload) or {}
        search = d.get("search") or {}
        sides = []
        for who, key, leg, sid in (("CPU/HTTP", cpu_key, "cpu_http", cpu_id),
                                   ("GPU/direct, warm", gpu_key, "gpu_direct_warm", gpu_id)):
            fetch = (d.get(leg) or {}).get("fetch_s")
            extra = ""
            if leg == "gpu_direct_warm":
                cold = (d.get("gpu_direct_cold") or {}).get("e2e_s")
                if isinstance(cold, (int, float)):
                    extra = f"; cold {cold:.1f} s"
            sides.append((who, result.get(key), fetch, recall_note(result.get("recall_" + sid),
                                                                   search.get(sid)), extra))
        out.append((label, sides))
    return out


def recall_note(recall, search):
    """'recall@10 0.951 at nprobe 8 refine x64' (or 'best 0.90 at ...' when short of the target)."""
    if not isinstance(recall, (int, float)):
        return ""
    note = f"recall@10 {recall:.3f}"
    if isinstance(search, dict) and "param" in search:
        where = f"{search['param']} {search.get('value')}"
        if search.get("refine", 1) > 1:
            where += f" refine x{search['refine']}"
        note = (note if search.get("reached_target") else "best " + note) + " at " + where
    return note


def render(result):
    rows = bars(result)
    longest = max([side[1] for _, sides in rows for side in sides
                   if isinstance(side[1], (int, float))] + [1e-9])
    width, left, bar_h, gap = 1200, 150, 26, 22
    height = 90 + len(rows) * (2 * bar_h + gap) + 40
    scale = (width - left - 560) / longest  # room for the labels
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="13">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="24" text-anchor="middle" font-size="16">'
           f'End-to-end index build (fetch + build), {escape(str(result.get("device")))}</text>',
           f'<text x="{width / 2}" y="44" text-anchor="middle" fill="#555">'
           f'CPU ({result.get("cpu_threads")} threads) fed over HTTP vs GPU fed over the direct '
           f'path; seconds (fetch shaded), lower is better</text>']
    y = 70
    for label, sides in rows:
        svg.append(f'<text x="10" y="{y + bar_h + 4}" font-weight="bold">{escape(label)}</text>')
        for (who, value, fetch, recall, extra), color in zip(sides, ("#8c8c8c", "#76b900")):
            if isinstance(value, (int, float)):
                w = max(1.0, value * scale)
                svg.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                           f'fill="{color}"/>')
                if isinstance(fetch, (int, float)) and fetch > 0:  # the fetch, darker
                    svg.append(f'<rect x="{left}" y="{y}" width="{max(1.0, fetch * scale):.1f}" '
                               f'height="{bar_h}" fill="#333" opacity="0.45"/>')
                text = f"{who}: {value:.1f} s"
                if isinstance(fetch, (int, float)):
                    text += f" (fetch {fetch:.1f})"
                text += extra
                if recall:
                    text += f", {recall}"
                svg.append(f'<text x="{left + w + 6:.1f}" y="{y + bar_h - 8}">{escape(text)}</text>')
            else:
                svg.append(f'<text x="{left}" y="{y + bar_h - 8}" fill="#a00">{who}: not run'
                           f'</text>')
            y += bar_h
        cpu, gpu = sides[0][1], sides[1][1]
        if isinstance(cpu, (int, float)) and isinstance(gpu, (int, float)) and gpu > 0:
            svg.append(f'<text x="{width - 10}" y="{y - bar_h + 4}" text-anchor="end" '
                       f'font-weight="bold">{cpu / gpu:.1f}x</text>')
        y += gap
    extra = []
    for key, name, unit in (("kmeans_fraction_of_gemm", "k-means / cuBLAS GEMM rate", ""),
                            ("gpu_get_fraction_of_h2d", "direct GPU GET / pinned H2D", ""),
                            ("gpu_get_aggregate_gbps", "parallel GETs into the GPU", " GB/s")):
        v = result.get(key)
        extra.append(f"{name}: {v:.2f}{unit}" if isinstance(v, (int, float))
                     else f"{name}: not run")
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
