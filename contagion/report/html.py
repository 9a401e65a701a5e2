"""HTML pieces of the report: every text goes through `esc` (html.escape) on its way in; the
only markup taken as is comes from this module and from the charts' SVG."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence

__all__ = ["Markup", "badge", "esc", "number", "page", "percent", "table", "unavailable",
           "usd"]


class Markup(str):
    """Text that is already HTML (built here or by the charts), not to be escaped again."""


def esc(value: object) -> Markup:
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def usd(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "—"
    size = abs(value)
    for bound, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if size >= bound:
            return f"${value / bound:,.2f}{suffix}"
    return f"${value:,.0f}"


def number(value: float | None, digits: int = 2) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None or math.isnan(value) else f"{value * 100:,.{digits}f} %"


def badge(level: str | None) -> Markup:
    """A level as a coloured label (the colours are in the page's style)."""
    if level is None:
        return Markup('<span class="badge none">not available</span>')
    return Markup(f'<span class="badge {esc(level)}">{esc(level)}</span>')


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], *,
          numeric: Iterable[int] = (), row_class: Sequence[str] | None = None) -> Markup:
    """A plain table; `numeric` are the column positions aligned right."""
    right = set(numeric)

    def cell(tag: str, i: int, value: object) -> str:
        align = ' class="num"' if i in right else ""
        return f"<{tag}{align}>{esc(value)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = []
    for k, row in enumerate(rows):
        css = f' class="{esc(row_class[k])}"' if row_class and row_class[k] else ""
        body.append(f"<tr{css}>" + "".join(cell("td", i, v) for i, v in enumerate(row))
                    + "</tr>")
    return Markup(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody>"
                  "</table>")


def unavailable(reason: str) -> Markup:
    return Markup(f'<p class="unavailable"><strong>Not available:</strong> {esc(reason)}</p>')


_STYLE = """
:root { --ink: #1f2a33; --muted: #5f6b76; --rule: #dde2e6; --paper: #ffffff; --bg: #f4f6f8;
        --green: #2e7d32; --amber: #e09b00; --red: #c62828; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 14px/1.5 -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif; }
header.top { background: #17212b; color: #f4f6f8; padding: 20px 32px; }
header.top h1 { margin: 0 0 10px; font-size: 22px; font-weight: 600; }
header.top dl { display: flex; flex-wrap: wrap; gap: 6px 28px; margin: 0; }
header.top dt { color: #9fb0bf; font-size: 11px; text-transform: uppercase;
                letter-spacing: .05em; }
header.top dd { margin: 0; font-size: 15px; }
nav { padding: 10px 32px; background: #e8ecef; font-size: 13px; }
nav a { color: #27548a; margin-right: 16px; text-decoration: none; }
main { max-width: 1120px; margin: 0 auto; padding: 8px 24px 40px; }
section { background: var(--paper); border: 1px solid var(--rule); border-radius: 6px;
          padding: 16px 22px 20px; margin: 18px 0; }
section h2 { margin: 0 0 4px; font-size: 18px; }
p.lead { margin: 0 0 12px; color: var(--muted); }
p.note { color: var(--muted); font-size: 12px; margin: 6px 0 0; }
p.unavailable { background: #f6f7f8; border-left: 4px solid #9aa5ae; padding: 10px 14px;
                margin: 8px 0; }
h3 { font-size: 15px; margin: 18px 0 6px; }
svg { width: 100%; height: auto; display: block; margin: 4px 0 8px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 6px 0; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--rule); text-align: left;
         vertical-align: top; }
th { background: #f0f3f5; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.alert td { background: #fdf3f2; }
.badge { display: inline-block; padding: 1px 10px; border-radius: 10px; color: #fff;
         font-weight: 600; font-size: 13px; }
.badge.green { background: var(--green); } .badge.amber { background: var(--amber); }
.badge.red { background: var(--red); } .badge.none { background: #7b8790; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr));
         gap: 8px 20px; margin: 8px 0 12px; }
.facts div { border-left: 3px solid var(--rule); padding-left: 10px; }
.facts .label { display: block; color: var(--muted); font-size: 12px; }
code { font-size: 12px; }
footer { color: var(--muted); font-size: 12px; text-align: center; padding: 0 0 24px; }
"""


def page(title: str, facts: Sequence[tuple[str, Markup | str]],
         sections: Sequence[tuple[str, str, Markup]], footer: str) -> str:
    """The whole document: a header of facts, a table of contents, one `<section id=…>` each."""
    header = "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in facts)
    nav = "".join(f'<a href="#{esc(i)}">{esc(t)}</a>' for i, t, _ in sections)
    body = "".join(f'<section id="{esc(i)}"><h2>{esc(t)}</h2>{b}</section>'
                   for i, t, b in sections)
    return ("<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body>"
            f'<header class="top" id="report-header"><h1>{esc(title)}</h1>'
            f"<dl>{header}</dl></header><nav>{nav}</nav><main>{body}</main>"
            f"<footer>{esc(footer)}</footer></body></html>\n")
