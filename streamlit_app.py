"""Flow Lab dashboard entry point: routes to the pages in pages/ and draws the shared sidebar.

Every page, Home included, has its own URL (``/home``, ``/train``, ...). The root ``/`` is a hidden
default page that only switches to Home: Streamlit serves its default page at ``/`` alone, so a default
Home would answer ``/home`` with a "Page not found" dialog.
"""

import streamlit as st

from dashboard.pages import DEFAULT_PAGE, PAGES
from dashboard.widgets import presenter
from dashboard.widgets.sidebar import training_status

st.set_page_config(page_title="Flow Lab", page_icon=":material/waves:", layout="wide")

pages = {
    spec: st.Page(spec.script, title=spec.title, icon=spec.icon, url_path=spec.url_path) for spec in PAGES
}


def _root() -> None:
    """``/``: switch to the default page, which lives at its own URL."""
    st.switch_page(pages[DEFAULT_PAGE])


page = st.navigation(
    [
        st.Page(_root, title=DEFAULT_PAGE.title, url_path="root", default=True, visibility="hidden"),
        *pages.values(),
    ]
)
with st.sidebar:
    presenter.sidebar_toggle()
training_status()
page.run()
