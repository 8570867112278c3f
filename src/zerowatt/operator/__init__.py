"""The Kubernetes operator: SpinApps, SpinAppExecutors and WasmApps into Deployments and Services."""
