"""Maths on the pages: the seed's F in LaTeX, and Markdown documents with $$ blocks rendered by KaTeX."""

from __future__ import annotations

import re
from pathlib import Path

import streamlit as st

DOCS = Path(__file__).resolve().parents[2] / "docs"

#: The seed's bijection, one block of NICE and RealNVP.
SEED_BIJECTION_LATEX = r"""
\begin{aligned}
F &= f_0 \circ f_1 \\
f_0(x, y) &= \big(\exp(sv(y)) \odot x + v(y),\; y\big) \\
f_1(x, y) &= \big(x,\; \exp(su(x)) \odot y + u(x)\big) \\
x, y &\in \mathbb{R}^{n/2}, \quad v, u, sv, su: \mathbb{R}^{n/2} \to \mathbb{R}^{n/2}
\end{aligned}
"""

#: The change of variables behind ``logProbability``.
CHANGE_OF_VARIABLES_LATEX = r"""
\begin{aligned}
\log p_X(x) &= \log p_Z(z) + \log\left\lvert \det \frac{\partial z}{\partial x} \right\rvert \\
z &= F^{-1}(x)
\end{aligned}
"""

_DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.DOTALL)


def markdown_parts(text: str) -> list[tuple[str, str]]:
    """Splits Markdown into ``("markdown", text)`` and ``("latex", body)`` parts at ``$$ ... $$`` blocks.

    Inline ``$...$`` stays in the Markdown parts (``st.markdown`` renders it with KaTeX); display
    blocks go to ``st.latex``, which centres them and handles multi-line environments.
    """
    parts: list[tuple[str, str]] = []
    position = 0
    for match in _DISPLAY_MATH.finditer(text):
        before = text[position : match.start()].strip()
        if before:
            parts.append(("markdown", before))
        parts.append(("latex", match.group(1).strip()))
        position = match.end()
    rest = text[position:].strip()
    if rest:
        parts.append(("markdown", rest))
    return parts


def read_doc(name: str, drop_title: bool = True) -> str:
    """The text of ``docs/<name>``; without its ``# Title`` line when ``drop_title`` (the page has one)."""
    text = (DOCS / name).read_text(encoding="utf-8")
    if drop_title and text.startswith("# "):
        text = text.split("\n", 1)[1] if "\n" in text else ""
    return text


def render_markdown_with_latex(text: str) -> None:
    """Renders Markdown with ``$$`` display maths: text with ``st.markdown``, maths with ``st.latex``."""
    for kind, content in markdown_parts(text):
        if kind == "latex":
            st.latex(content)
        else:
            st.markdown(content)
