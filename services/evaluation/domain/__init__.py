"""Pure rules of the evaluation: what an event adds to a month's figures, how figures merge."""
