"""Flow Lab dashboard entry point: routes to the pages in pages/."""

import streamlit as st

st.set_page_config(page_title="Flow Lab", page_icon="🌊", layout="wide")
st.title("Flow Lab")
st.write("Normalizing flows you can train and look inside. The pages are on their way.")
