# echo-c: the C echo guest (WAGI), also the benchmark app.
TARGETS += echo-c/echo.wasm

echo-c/echo.wasm: echo-c/echo.c
	$(CC) $(CFLAGS) -Wl,--strip-all -o $@ $<
