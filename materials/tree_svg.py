"""The propagation tree as a picture (SVG): left to right by depth, sharers labelled, node
size by reach. Past ``limit`` nodes the smallest subtrees are folded into one "另有 N 人"
node; ``expand`` (a share token) unfolds that node's subtree."""
from __future__ import annotations

from html import escape


def render(tree: dict, names: dict[str, str], limit: int = 150, expand: str | None = None) -> str:
    rows: list[tuple[int, dict | None, int, str | None]] = []  # (depth, node or None for folded, folded count, parent token)
    budget = [limit]

    def size(n):
        return 1 + sum(size(c) for c in n["children"])

    def walk(n, depth, parent):
        rows.append((depth, n, 0, parent))
        budget[0] -= 1
        kids = n["children"]
        shown = []
        for c in kids:
            if budget[0] > 0 or n["share_token"] == expand:
                shown.append(c)
            else:
                break
        for c in shown:
            walk(c, depth + 1, n["share_token"])
        hidden = kids[len(shown):]
        if hidden:
            rows.append((depth + 1, None, sum(size(c) for c in hidden), n["share_token"]))

    for r in tree["roots"]:
        if budget[0] <= 0:
            rows.append((0, None, size(r), None))
            continue
        walk(r, 0, None)
    width = 220 * (max((d for d, *_ in rows), default=0) + 1) + 40
    height = 28 * len(rows) + 40
    pos: dict[str | None, tuple[float, float]] = {}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="share-tree" width="{width}" height="{height}" font-family="sans-serif" font-size="12">']
    for i, (depth, n, folded, parent) in enumerate(rows):
        x, y = 20 + depth * 220, 30 + i * 28
        if parent in pos:
            px, py = pos[parent]
            out.append(f'<path d="M{px + 8:.0f},{py:.0f} C{px + 60:.0f},{py:.0f} {x - 60:.0f},{y:.0f} {x - 8:.0f},{y:.0f}" '
                       f'stroke="#c9cdd4" fill="none"/>')
        if n is None:
            link = f'?expand={escape(parent)}' if parent else ""
            out.append(f'<a href="{link}"><text class="folded" x="{x}" y="{y + 4}" fill="#86909c">… 另有 {folded} 人（展开）</text></a>')
            continue
        pos[n["share_token"]] = (x, y)
        v = n["viewer"]
        label = names.get(f"e:{v['employee_id']}") if v.get("employee_id") else names.get(f"o:{v.get('openid')}") if v.get("openid") else None
        label = label or ("访客" if not v else (v.get("openid") or "")[-6:])
        r = 5 + min(n["reach"], 50) ** 0.5 * 1.5
        colour = "#1677ff" if v.get("employee_id") else "#07c160"
        out.append(f'<g class="node" data-token="{n["share_token"]}"><circle cx="{x}" cy="{y}" r="{r:.1f}" fill="{colour}"/>'
                   f'<text x="{x + r + 4:.0f}" y="{y + 4}">{escape(label)} · 阅读 {n["visits"]} · 触达 {n["reach"]}</text></g>')
    return "".join(out) + "</svg>"
