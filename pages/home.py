"""home page (placeholder until its issue lands)."""

import streamlit as st

st.header("Home")
st.info("This page is being built.")
