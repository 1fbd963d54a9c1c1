"""train page (placeholder until its issue lands)."""

import streamlit as st

st.header("Train")
st.info("This page is being built.")
