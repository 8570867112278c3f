"""The WAGI executor: CGI over WASI p1 in-process (native one-call path, ctypes path, stdio)."""
