"""Flow Lab dashboard entry point: routes to the pages in pages/ and draws the shared sidebar."""

import streamlit as st

from dashboard.pages import DEFAULT_PAGE, PAGES
from dashboard.widgets.sidebar import training_status

st.set_page_config(page_title="Flow Lab", page_icon=":material/waves:", layout="wide")

page = st.navigation(
    [
        st.Page(
            spec.script,
            title=spec.title,
            icon=spec.icon,
            url_path=spec.url_path,
            default=spec is DEFAULT_PAGE,
        )
        for spec in PAGES
    ]
)
training_status()
page.run()
