"""samples page (placeholder until its issue lands)."""

import streamlit as st

st.header("Samples")
st.info("This page is being built.")
