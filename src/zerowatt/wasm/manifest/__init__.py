"""spin.toml: parse (pure) -> load (adapter: files, sources, variables) -> the model in zerowatt.wasm.model."""
