;; The smallest WAGI guest: a core module whose `_start` writes a CGI response to stdout (fd 1)
;; with WASI's fd_write. No toolchain is needed: zerowatt compiles the text format directly.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; The CGI response: headers, a blank line, then the body.
  (data (i32.const 64) "Content-Type: text/plain; charset=utf-8\n\nHello from WebAssembly (WAT)!\n")
  (func (export "_start")
    ;; one iovec at offset 0: { buf = 64, len = 71 }
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 71))
    ;; fd_write(fd=1, iovs=0, iovs_len=1, nwritten=8)
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
