"""playground page (placeholder until its issue lands)."""

import streamlit as st

st.header("Playground")
st.info("This page is being built.")
