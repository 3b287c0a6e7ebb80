"""The naming chart (viz.figures.naming_figure) on CSVs carrying Wilson interval columns."""

from __future__ import annotations

from viz import figures


def test_interval_columns_are_error_bars_not_bars():
    rows = [{"color": "red", "n_images": "10", "font_pct": "50.00", "font_pct_lo": "23.659",
             "font_pct_hi": "76.341", "none_pct": "0.00", "none_pct_lo": "0.000",
             "none_pct_hi": "27.753"},
            {"color": "TOTAL", "n_images": "10", "font_pct": "100.00", "font_pct_lo": "72.247",
             "font_pct_hi": "100.000", "none_pct": "0.00", "none_pct_lo": "0.000",
             "none_pct_hi": "27.753"}]
    ax = figures.naming_figure("exp5", rows).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["font_pct", "none_pct"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["red", "TOTAL"]
    assert sorted(p.get_width() for p in ax.patches) == [0.0, 0.0, 50.0, 100.0]
    segments = [s for c in ax.collections for s in c.get_segments()]
    assert len(segments) == 4  # one interval per bar
    spans = sorted((round(s[0][0], 3), round(s[1][0], 3)) for s in segments)
    assert (23.659, 76.341) in spans and (0.0, 27.753) in spans
