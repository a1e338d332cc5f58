"""GlucoFlow: a (fictional) glucose-meter start-up, as an example partner."""
