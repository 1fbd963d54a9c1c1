"""Parts shared by several pages: plotly charts, image helpers, LaTeX/markdown, the sidebar."""
