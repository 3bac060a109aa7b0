"""Reports: JUnit summaries, campaign tables, charts."""
