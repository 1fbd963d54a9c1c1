"""Flow Lab dashboard entry point: only routes to the pages in pages/."""

import streamlit as st

st.set_page_config(page_title="Flow Lab", page_icon="🌊", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon="🏠", url_path="home", default=True),
    st.Page("pages/train.py", title="Train", icon="🏋️", url_path="train"),
    st.Page("pages/samples.py", title="Samples", icon="🎲", url_path="samples"),
    st.Page("pages/jacobian.py", title="Jacobian", icon="🧮", url_path="jacobian"),
    st.Page("pages/model.py", title="Model", icon="🧱", url_path="model"),
    st.Page("pages/playground.py", title="Playground", icon="🌀", url_path="playground"),
]

st.navigation(PAGES).run()
