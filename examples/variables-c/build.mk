# variables-c: shows application variables, templating and secrets (WAGI).
TARGETS += variables-c/variables.wasm

variables-c/variables.wasm: variables-c/variables.c
	$(CC) $(CFLAGS) -Wl,--strip-all -o $@ $<
