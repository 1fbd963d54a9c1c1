"""The sample score (flows.evaluation) on a page: model samples beside held-out real images."""

from __future__ import annotations

from typing import Any

import streamlit as st

EXPLANATION = (
    "A small CNN trained here on real images judges the samples: **recognised** is the share it "
    "classifies with probability ≥ 0.9, **class entropy** how evenly its predicted classes spread "
    "(3.32 bits = all ten equally, 0 = one class), **Fréchet** the distance between its internal "
    "features for the samples and for held-out real images (lower is closer). It judges *looks like "
    "the data*, not a paper metric: compare with the real images' row, scored the same way."
)


def score_rows(samples: dict[str, Any], real: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Table rows (model samples, then real images) of two :meth:`SampleScore.to_dict` results."""
    rows = []
    for label, score in (("model samples", samples), ("real held-out images", real)):
        if score is None:
            continue
        rows.append(
            {
                "": label,
                "images": score["count"],
                "recognised": f"{score['recognised']:.0%}",
                "class entropy (bits)": round(score["class_entropy_bits"], 2),
                "Fréchet": round(score["frechet"], 1),
            }
        )
    return rows


def score_table(samples: dict[str, Any], real: dict[str, Any] | None, caption: str = "") -> None:
    """The score as a small table, with what it means."""
    st.dataframe(score_rows(samples, real), hide_index=True, width="stretch")
    st.caption((caption + " " if caption else "") + EXPLANATION)
