"""Spin apps from OCI registries and digest-pinned URLs (``zerowatt pull``): a pure core (references,
manifests, the locked app, credentials, archives) and the HTTP adapter that fetches and writes them."""
