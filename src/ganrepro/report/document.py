"""A report as a list of blocks, rendered to Markdown and to a standalone HTML page.

Blocks: ``Heading(level, text)``, ``Paragraph(text)`` (Markdown inline: ``code``, **bold**),
``Table(df, columns, headers)``, ``Image(path, alt)`` (path relative to the report folder).
Both renderings are plain functions of the blocks: same blocks, same bytes.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

import pandas as pd

from .tables import fmt, markdown


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Table:
    df: pd.DataFrame = field(compare=False)
    columns: tuple = ()
    headers: tuple = ()
    digits: int = 4


@dataclass(frozen=True)
class Image:
    path: str
    alt: str


def to_markdown(blocks) -> str:
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append("#" * block.level + " " + block.text + "\n")
        elif isinstance(block, Paragraph):
            parts.append(block.text.rstrip() + "\n")
        elif isinstance(block, Table):
            parts.append(markdown(block.df, block.columns or None, block.headers or None, block.digits))
        elif isinstance(block, Image):
            parts.append(f"![{block.alt}]({block.path})\n")
        else:  # pragma: no cover - a programming error
            raise TypeError(f"unknown block {block!r}")
    return "\n".join(parts)


_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")


def _inline(text: str) -> str:
    out = html.escape(text, quote=False)
    out = _CODE.sub(r"<code>\1</code>", out)
    out = _BOLD.sub(r"<strong>\1</strong>", out)
    return _LINK.sub(r'<a href="\2">\1</a>', out)


def _html_table(block: Table) -> str:
    columns = list(block.columns or block.df.columns)
    headers = list(block.headers or columns)
    head = "".join(f"<th>{_inline(h)}</th>" for h in headers)
    rows = []
    for _, row in block.df.iterrows():
        rows.append("<tr>" + "".join(f"<td>{html.escape(fmt(row[c], block.digits))}</td>" for c in columns) + "</tr>")
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"


STYLE = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;line-height:1.4}"
         "table{border-collapse:collapse;margin:1em 0;font-size:90%}"
         "th,td{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f4f4f4}"
         "td:first-child,th:first-child{text-align:left}img{max-width:100%}code{background:#f4f4f4}")


def to_html(blocks, title: str) -> str:
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
             f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>"]
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{_inline(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            lines = block.text.strip().split("\n")
            if all(line.startswith("- ") for line in lines):
                parts.append("<ul>\n" + "\n".join(f"<li>{_inline(line[2:])}</li>" for line in lines) + "\n</ul>")
            else:
                parts.append(f"<p>{_inline(' '.join(lines))}</p>")
        elif isinstance(block, Table):
            parts.append(_html_table(block))
        elif isinstance(block, Image):
            parts.append(f'<p><img src="{html.escape(block.path)}" alt="{html.escape(block.alt)}"></p>')
        else:  # pragma: no cover
            raise TypeError(f"unknown block {block!r}")
    parts.append("</body>\n</html>\n")
    return "\n".join(parts)
