"""The processing kernel: services declare inputs, tables and timers; the kernel runs them
exactly once per input over Kafka transactions (see docs/kernel.md)."""
