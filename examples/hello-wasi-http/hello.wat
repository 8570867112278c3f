;; A wasi:http 0.2 "hello" component written directly in the component-model text format, so it
;; needs no Rust/Go toolchain: `wasmtime serve` (and zerowatt's wasi:http executor) run it as is,
;; or after `wasm-tools parse` (examples/hello-wasi-http/build.mk) for a faster load.
;;
;; It imports only the few wasi:io and wasi:http functions it calls and exports
;; `wasi:http/incoming-handler@0.2.0`. Every request is answered with 200, `content-type:
;; text/plain` and the body "Hello from wasi:http\n".
;;
;; Layout: a tiny core module owns the linear memory and a bump allocator (`cabi_realloc`), so
;; the imported functions can be lowered against that memory before the main module, which
;; imports them, is instantiated (no indirect-call shim needed).
(component $C
  ;; ---- imports: the types the handler needs, declared with their WIT names -------------------
  (import "wasi:io/error@0.2.0" (instance $io-error
    (export "error" (type (sub resource)))))
  (alias export $io-error "error" (type $io-err))

  (import "wasi:io/streams@0.2.0" (instance $streams
    (alias outer $C $io-err (type $err0))
    (export "error" (type $err (eq $err0)))
    (export "output-stream" (type $os (sub resource)))
    (type $stream-error (variant (case "last-operation-failed" (own $err)) (case "closed")))
    (export "stream-error" (type $se (eq $stream-error)))
    (export "[method]output-stream.blocking-write-and-flush"
      (func (param "self" (borrow $os)) (param "contents" (list u8)) (result (result (error $se)))))))
  (alias export $streams "output-stream" (type $output-stream))

  (import "wasi:http/types@0.2.0" (instance $types
    (alias outer $C $output-stream (type $os0))
    (export "output-stream" (type $os (eq $os0)))
    (export "fields" (type $fields (sub resource)))
    (export "incoming-request" (type $ireq (sub resource)))
    (export "outgoing-response" (type $oresp (sub resource)))
    (export "outgoing-body" (type $obody (sub resource)))
    (export "response-outparam" (type $rop (sub resource)))
    (type $dns (record (field "rcode" (option string)) (field "info-code" (option u16))))
    (export "DNS-error-payload" (type $dns-e (eq $dns)))
    (type $tls (record (field "alert-id" (option u8)) (field "alert-message" (option string))))
    (export "TLS-alert-received-payload" (type $tls-e (eq $tls)))
    (type $fsp (record (field "field-name" (option string)) (field "field-size" (option u32))))
    (export "field-size-payload" (type $fsp-e (eq $fsp)))
    (type $ec (variant
      (case "DNS-timeout")
      (case "DNS-error" $dns-e)
      (case "destination-not-found")
      (case "destination-unavailable")
      (case "destination-IP-prohibited")
      (case "destination-IP-unroutable")
      (case "connection-refused")
      (case "connection-terminated")
      (case "connection-timeout")
      (case "connection-read-timeout")
      (case "connection-write-timeout")
      (case "connection-limit-reached")
      (case "TLS-protocol-error")
      (case "TLS-certificate-error")
      (case "TLS-alert-received" $tls-e)
      (case "HTTP-request-denied")
      (case "HTTP-request-length-required")
      (case "HTTP-request-body-size" (option u64))
      (case "HTTP-request-method-invalid")
      (case "HTTP-request-URI-invalid")
      (case "HTTP-request-URI-too-long")
      (case "HTTP-request-header-section-size" (option u32))
      (case "HTTP-request-header-size" (option $fsp-e))
      (case "HTTP-request-trailer-section-size" (option u32))
      (case "HTTP-request-trailer-size" $fsp-e)
      (case "HTTP-response-incomplete")
      (case "HTTP-response-header-section-size" (option u32))
      (case "HTTP-response-header-size" $fsp-e)
      (case "HTTP-response-body-size" (option u64))
      (case "HTTP-response-trailer-section-size" (option u32))
      (case "HTTP-response-trailer-size" $fsp-e)
      (case "HTTP-response-transfer-coding" (option string))
      (case "HTTP-response-content-coding" (option string))
      (case "HTTP-response-timeout")
      (case "HTTP-upgrade-failed")
      (case "HTTP-protocol-error")
      (case "loop-detected")
      (case "configuration-error")
      (case "internal-error" (option string))))
    (export "error-code" (type $ec-e (eq $ec)))
    (type $he (variant (case "invalid-syntax") (case "forbidden") (case "immutable")))
    (export "header-error" (type $he-e (eq $he)))
    (export "[static]fields.from-list"
      (func (param "entries" (list (tuple string (list u8)))) (result (result (own $fields) (error $he-e)))))
    (export "[constructor]outgoing-response" (func (param "headers" (own $fields)) (result (own $oresp))))
    (export "[method]outgoing-response.body" (func (param "self" (borrow $oresp)) (result (result (own $obody)))))
    (export "[method]outgoing-body.write" (func (param "self" (borrow $obody)) (result (result (own $os)))))
    (export "[static]outgoing-body.finish"
      (func (param "this" (own $obody)) (param "trailers" (option (own $fields))) (result (result (error $ec-e)))))
    (export "[static]response-outparam.set"
      (func (param "param" (own $rop)) (param "response" (result (own $oresp) (error $ec-e)))))))
  (alias export $types "incoming-request" (type $incoming-request))
  (alias export $types "response-outparam" (type $response-outparam))

  ;; ---- memory + allocator ----------------------------------------------------------------------
  (core module $Mem
    (memory (export "memory") 1)
    (global $heap (mut i32) (i32.const 8192))
    ;; cabi_realloc(old, old_size, align, new_size): a bump allocator; the instance lives for one
    ;; request (wasmtime serve instantiates per request), so nothing is ever freed.
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get 2))))
      (global.set $heap (i32.add (local.get $p) (local.get 3)))
      (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
        (then (drop (memory.grow (i32.add (i32.shr_u (i32.sub (global.get $heap)
                  (i32.mul (memory.size) (i32.const 65536))) (i32.const 16)) (i32.const 1))))))
      (local.get $p)))
  (core instance $mem (instantiate $Mem))
  (alias core export $mem "memory" (core memory $memory))
  (alias core export $mem "realloc" (core func $realloc))

  ;; ---- lowered imports -------------------------------------------------------------------------
  (core func $from-list (canon lower (func $types "[static]fields.from-list") (memory $memory) (realloc $realloc)))
  (core func $new-response (canon lower (func $types "[constructor]outgoing-response")))
  (core func $response-body (canon lower (func $types "[method]outgoing-response.body") (memory $memory)))
  (core func $body-write (canon lower (func $types "[method]outgoing-body.write") (memory $memory)))
  (core func $body-finish (canon lower (func $types "[static]outgoing-body.finish") (memory $memory) (realloc $realloc)))
  (core func $outparam-set (canon lower (func $types "[static]response-outparam.set") (memory $memory)))
  (core func $write-and-flush
    (canon lower (func $streams "[method]output-stream.blocking-write-and-flush") (memory $memory)))
  (core func $drop-request (canon resource.drop $incoming-request))
  (core func $drop-stream (canon resource.drop $output-stream))

  ;; ---- the handler -----------------------------------------------------------------------------
  (core module $Main
    (import "mem" "memory" (memory 1))
    (import "http" "from-list" (func $from-list (param i32 i32 i32)))
    (import "http" "new-response" (func $new-response (param i32) (result i32)))
    (import "http" "response-body" (func $response-body (param i32 i32)))
    (import "http" "body-write" (func $body-write (param i32 i32)))
    (import "http" "body-finish" (func $body-finish (param i32 i32 i32 i32)))
    (import "http" "outparam-set" (func $outparam-set (param i32 i32 i32 i32 i64 i32 i32 i32 i32)))
    (import "http" "drop-request" (func $drop-request (param i32)))
    (import "io" "write-and-flush" (func $write-and-flush (param i32 i32 i32 i32)))
    (import "io" "drop-stream" (func $drop-stream (param i32)))
    ;; 1024: header name, 1040: header value, 1056: body, 1088: the one-entry header list
    ;; (string ptr/len, bytes ptr/len), 1152: return area for results passed through memory.
    (data (i32.const 1024) "content-type")
    (data (i32.const 1040) "text/plain")
    (data (i32.const 1056) "Hello from wasi:http\n")
    (data (i32.const 1088) "\00\04\00\00\0c\00\00\00\10\04\00\00\0a\00\00\00")
    (func (export "handle") (param $request i32) (param $outparam i32)
      (local $response i32) (local $body i32) (local $stream i32)
      (call $drop-request (local.get $request))
      ;; headers = fields.from-list([("content-type", "text/plain")])
      (call $from-list (i32.const 1088) (i32.const 1) (i32.const 1152))
      (if (i32.load8_u (i32.const 1152)) (then unreachable))
      (local.set $response (call $new-response (i32.load (i32.const 1156))))
      (call $response-body (local.get $response) (i32.const 1152))
      (if (i32.load8_u (i32.const 1152)) (then unreachable))
      (local.set $body (i32.load (i32.const 1156)))
      ;; send the head (status 200 is the default), then stream the body
      (call $outparam-set (local.get $outparam) (i32.const 0) (local.get $response)
        (i32.const 0) (i64.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
      (call $body-write (local.get $body) (i32.const 1152))
      (if (i32.load8_u (i32.const 1152)) (then unreachable))
      (local.set $stream (i32.load (i32.const 1156)))
      (call $write-and-flush (local.get $stream) (i32.const 1056) (i32.const 21) (i32.const 1152))
      (if (i32.load8_u (i32.const 1152)) (then unreachable))
      (call $drop-stream (local.get $stream))
      (call $body-finish (local.get $body) (i32.const 0) (i32.const 0) (i32.const 1152))
      (if (i32.load8_u (i32.const 1152)) (then unreachable))))
  (core instance $main (instantiate $Main
    (with "mem" (instance (export "memory" (memory $memory))))
    (with "http" (instance
      (export "from-list" (func $from-list))
      (export "new-response" (func $new-response))
      (export "response-body" (func $response-body))
      (export "body-write" (func $body-write))
      (export "body-finish" (func $body-finish))
      (export "outparam-set" (func $outparam-set))
      (export "drop-request" (func $drop-request))))
    (with "io" (instance
      (export "write-and-flush" (func $write-and-flush))
      (export "drop-stream" (func $drop-stream))))))

  ;; ---- export wasi:http/incoming-handler ------------------------------------------------------
  (func $handle (param "request" (own $incoming-request)) (param "response-out" (own $response-outparam))
    (canon lift (core func $main "handle")))
  (instance $handler (export "handle" (func $handle)))
  (export "wasi:http/incoming-handler@0.2.0" (instance $handler)))
