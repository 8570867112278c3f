;; A deliberately broken WAGI guest: `_start` loops forever without writing anything.
;; It shows the per-request wall-clock deadline: the host interrupts it (epoch interruption) after
;; the component's request_timeout and answers 504, while other requests keep being served.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $forever
      (br $forever))))
