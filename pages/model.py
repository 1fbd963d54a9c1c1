"""model page (placeholder until its issue lands)."""

import streamlit as st

st.header("Model")
st.info("This page is being built.")
