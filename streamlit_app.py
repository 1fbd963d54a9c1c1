"""Flow Lab dashboard entry point: routes to the pages in pages/ and draws the shared sidebar."""

import streamlit as st

from dashboard.sidebar import training_status

st.set_page_config(page_title="Flow Lab", page_icon=":material/waves:", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", url_path="home", default=True),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
    st.Page("pages/samples.py", title="Samples", icon=":material/grid_view:", url_path="samples"),
    st.Page("pages/jacobian.py", title="Jacobian", icon=":material/functions:", url_path="jacobian"),
    st.Page("pages/model.py", title="Model", icon=":material/account_tree:", url_path="model"),
    st.Page("pages/playground.py", title="Playground", icon=":material/scatter_plot:", url_path="playground"),
]

page = st.navigation(PAGES)
training_status()
page.run()
