"""The wasi:http executor: supervised `wasmtime serve` children, their HTTP client, the CPU ledger."""
