"""Rendering report blocks (see :mod:`rhm.experiments.analysis`) to Markdown and to HTML."""

from __future__ import annotations

import html
import re

def render_md(blocks) -> str:
    lines = []
    for b in blocks:
        kind = b[0]
        if kind in ("h1", "h2", "h3"):
            lines += ["#" * int(kind[1]) + " " + b[1], ""]
        elif kind == "p":
            lines += [b[1], ""]
        elif kind == "table":
            _, headers, rows = b
            lines.append("| " + " | ".join(str(h) for h in headers) + " |")
            lines.append("|" + "---|" * len(headers))
            for r in rows:
                lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |")
            lines.append("")
        elif kind == "fig":
            lines += [f"![{b[2]}]({b[1]})", "", f"*{b[2]}*", ""]
    return "\n".join(lines)


def _inline(text: str) -> str:
    t = html.escape(text)
    t = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", t)
    t = re.sub(r"`(.+?)`", r"<code>\1</code>", t)
    return t


def render_html(blocks, title: str) -> str:
    out = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>", f"<title>{html.escape(title)}</title>",
           "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}"
           "table{border-collapse:collapse;margin:1em 0;font-size:90%}td,th{border:1px solid #bbb;padding:3px 7px}"
           "th{background:#eee}img{max-width:100%}figcaption{font-style:italic;color:#444}</style>",
           "</head><body>"]
    for b in blocks:
        kind = b[0]
        if kind in ("h1", "h2", "h3"):
            out.append(f"<{kind}>{_inline(b[1])}</{kind}>")
        elif kind == "p":
            out.append(f"<p>{_inline(b[1])}</p>")
        elif kind == "table":
            _, headers, rows = b
            out.append("<table><tr>" + "".join(f"<th>{_inline(str(h))}</th>" for h in headers) + "</tr>")
            for r in rows:
                out.append("<tr>" + "".join(f"<td>{_inline(str(c))}</td>" for c in r) + "</tr>")
            out.append("</table>")
        elif kind == "fig":
            out.append(f"<figure><img src='{html.escape(b[1])}' alt='{html.escape(b[2])}'>"
                       f"<figcaption>{_inline(b[2])}</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out)
