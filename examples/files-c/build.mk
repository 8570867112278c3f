# files-c: serves files from a read-only mount (WAGI).
TARGETS += files-c/files.wasm

files-c/files.wasm: files-c/files.c
	$(CC) $(CFLAGS) -Wl,--strip-all -o $@ $<
