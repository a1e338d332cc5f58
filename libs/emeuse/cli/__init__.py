"""The `emeuse` command-line tool: schema-aware topics, publish and tail."""
