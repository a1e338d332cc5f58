"""Kubernetes manifests generated from the registries (`emeuse deploy render`)."""
