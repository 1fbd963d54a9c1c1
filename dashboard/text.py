"""User text shown as plain text: Streamlit renders st.error, st.warning, st.caption, ... as markdown.

A run name, a query parameter, an uploaded file's name, a CSV cell or an error message quoting any of
them must not become an image the visitor's browser fetches (``![x](http://host/t.png)``), a live link,
emphasis, a heading, LaTeX or a coloured directive. :func:`plain` escapes each character markdown would
act on with a backslash (which markdown then shows as the bare character) and breaks the URL patterns
that GitHub-flavoured markdown turns into links by themselves.
"""

from __future__ import annotations

import re

#: Characters that start markdown syntax, Streamlit directives (``:red[...]``) or LaTeX (``$``).
MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~$])")
#: ``http://...`` and ``www.`` are linked without any brackets (GFM autolink literals).
AUTOLINK = re.compile(r"(?i)://|\b(www)\.")


def plain(text: object) -> str:
    """``text`` escaped so that Streamlit's markdown shows it literally, e.g. ``plain("![x](u)")``."""
    escaped = MARKDOWN_SPECIAL.sub(r"\\\1", str(text))
    return AUTOLINK.sub(lambda match: f"{match.group(1)}\\." if match.group(1) else ":\\/\\/", escaped)
