"""A model card's text: sections of paragraphs, lists, tables and pictures, written as Markdown
or as one self-contained HTML page (pictures inlined), and fitted into a registry description.

Inline text uses a small part of Markdown that both writers understand: `code`, **bold** and
backslash escapes (`escape` makes any value safe to put in a sentence or a table cell).
"""

import base64
import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

INLINE = re.compile(r"`([^`]*)`|\*\*(.+?)\*\*|\\([\\`*_|<>\[\]#])")
SPECIAL = re.compile(r"([\\`*_|<>\[\]#])")
STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .6rem;text-align:left}"
    "img{max-width:100%}code{background:#f3f3f3;padding:0 .2rem}"
)


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Picture:
    caption: str
    path: str  # the picture's artifact path in the training run, e.g. plots/confusion_matrix.png
    # Shown in the registry description; a picture too wide for the MLflow UI's page is linked.
    preview: bool = True


Block = str | Bullets | Table | Picture


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple[Block, ...]
    optional: bool = False  # may be left out of the registry description when it is too long


@dataclass(frozen=True)
class Card:
    title: str
    sections: tuple[Section, ...]

    @property
    def pictures(self) -> list[Picture]:
        return [block for section in self.sections for block in section.blocks if isinstance(block, Picture)]


def escape(value: object) -> str:
    """value as literal Markdown text: characters Markdown would read as formatting are escaped."""
    return SPECIAL.sub(r"\\\1", str(value))


def code(value: object) -> str:
    return "`" + str(value).replace("`", "'") + "`"


def markdown(card: Card, picture: Callable[[Picture], str]) -> str:
    """The card as Markdown; picture(p) writes one picture (an image link, or a mention)."""
    parts = [f"# {card.title}"]
    for section in card.sections:
        parts.append(_section_markdown(section, picture))
    return "\n\n".join(parts) + "\n"


def _section_markdown(section: Section, picture: Callable[[Picture], str]) -> str:
    parts = [f"## {section.title}"]
    for block in section.blocks:
        if isinstance(block, Bullets):
            parts.append("\n".join(f"- {item}" for item in block.items))
        elif isinstance(block, Table):
            lines = [block.header, tuple("---" for _ in block.header), *block.rows]
            parts.append("\n".join("| " + " | ".join(row) + " |" for row in lines))
        elif isinstance(block, Picture):
            parts.append(picture(block))
        else:
            parts.append(block)
    return "\n\n".join(parts)


def description(card: Card, picture: Callable[[Picture], str], limit: int, footer: str) -> str:
    """The card's Markdown within limit characters, ending with footer (where the full card is):
    optional sections are left out, longest first, until it fits, and as a last resort the text
    is cut at a line break."""
    sections = list(card.sections)
    text = markdown(Card(card.title, tuple(sections)), picture) + "\n" + footer
    while len(text) > limit and any(section.optional for section in sections):
        sections.remove(max((s for s in sections if s.optional), key=lambda s: len(_section_markdown(s, picture))))
        text = markdown(Card(card.title, tuple(sections)), picture) + "\n" + footer
    if len(text) > limit:
        room = limit - len(footer) - len("…\n\n")
        text = text[: text.rfind("\n", 0, room) + 1] + "…\n\n" + footer
    return text


def page(card: Card, images: Mapping[str, bytes]) -> str:
    """The card as one HTML page with every picture inlined (images maps a path to PNG bytes)."""
    parts = [f"<h1>{_inline(card.title)}</h1>"]
    for section in card.sections:
        parts.append(f"<h2>{_inline(section.title)}</h2>")
        parts += [_block_html(block, images) for block in section.blocks]
    body = "\n".join(parts)
    title = html.escape(card.title.replace("`", ""))
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def _block_html(block: Block, images: Mapping[str, bytes]) -> str:
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Table):
        head = "".join(f"<th>{_inline(cell)}</th>" for cell in block.header)
        rows = "".join("<tr>" + "".join(f"<td>{_inline(cell)}</td>" for cell in row) + "</tr>" for row in block.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    if isinstance(block, Picture):
        data = base64.b64encode(images[block.path]).decode("ascii")
        caption = _inline(block.caption)
        image = f'<img alt="{html.escape(block.caption)}" src="data:image/png;base64,{data}">'
        return f"<figure>{image}<figcaption>{caption}</figcaption></figure>"
    return f"<p>{_inline(block)}</p>"


def _inline(text: str) -> str:
    out, position = [], 0
    for match in INLINE.finditer(text):
        out.append(html.escape(text[position : match.start()]))
        literal, bold, escaped = match.groups()
        if literal is not None:
            out.append(f"<code>{html.escape(literal)}</code>")
        elif bold is not None:
            out.append(f"<strong>{_inline(bold)}</strong>")
        else:
            out.append(html.escape(escaped))
        position = match.end()
    out.append(html.escape(text[position:]))
    return "".join(out)
