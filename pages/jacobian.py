"""jacobian page (placeholder until its issue lands)."""

import streamlit as st

st.header("Jacobian")
st.info("This page is being built.")
