/* Decoder of Prometheus' XOR ("Gorilla") chunks, for remote-read answers (zerowatt.rightsize.remoteread).
 *
 * Format after Prometheus' tsdb/chunkenc/xor.go and bstream.go (written from their description; no code
 * copied): a 2-byte big-endian sample count, then a big-endian bit stream: sample 0 as a signed varint time
 * and 64 value bits; sample 1 as an unsigned varint time delta and an XOR'd value; later samples as a
 * delta-of-delta time ('0', '10'+14 bits, '110'+17, '1110'+20, '1111'+64, two's complement) and an XOR'd
 * value ('0' same; '10' reuse the previous leading/trailing zero counts; '11' + 5 bits leading + 6 bits
 * significant (0 means 64) + the significant bits).
 *
 * zw_decode_xor writes at most cap samples and returns how many, or -1 on a malformed chunk.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    const uint8_t *p;
    size_t nbits;
    size_t pos;
} reader;

static int read_bits(reader *r, int n, uint64_t *out) {
    uint64_t v = 0;
    if (r->pos + (size_t)n > r->nbits) return -1;
    while (n > 0) {
        size_t byte = r->pos >> 3;
        int off = (int)(r->pos & 7);
        int avail = 8 - off;
        int take = n < avail ? n : avail;
        uint8_t b = (uint8_t)(r->p[byte] << off);
        v = (v << take) | (uint64_t)(b >> (8 - take));
        r->pos += (size_t)take;
        n -= take;
    }
    *out = v;
    return 0;
}

static int read_uvarint(reader *r, uint64_t *out) {
    uint64_t x = 0, b;
    int shift = 0;
    for (int i = 0; i < 10; i++) {
        if (read_bits(r, 8, &b) < 0) return -1;
        x |= (b & 0x7f) << shift;
        if (b < 0x80) {
            *out = x;
            return 0;
        }
        shift += 7;
    }
    return -1;
}

static int read_value(reader *r, uint64_t *vbits, int *leading, int *trailing) {
    uint64_t bit, bits;
    if (read_bits(r, 1, &bit) < 0) return -1;
    if (bit == 0) return 0;
    if (read_bits(r, 1, &bit) < 0) return -1;
    if (bit == 1) {
        if (read_bits(r, 5, &bits) < 0) return -1;
        *leading = (int)bits;
        if (read_bits(r, 6, &bits) < 0) return -1;
        int mbits = bits == 0 ? 64 : (int)bits;
        *trailing = 64 - *leading - mbits;
        if (*trailing < 0) return -1;
    }
    int mbits = 64 - *leading - *trailing;
    if (read_bits(r, mbits, &bits) < 0) return -1;
    *vbits ^= *trailing >= 64 ? 0 : bits << *trailing;
    return 0;
}

long zw_decode_xor(const uint8_t *data, size_t len, int64_t *ts, double *vs, long cap) {
    if (len < 2) return -1;
    long n = ((long)data[0] << 8) | (long)data[1];
    if (n > cap) return -1;
    reader r = {data + 2, (len - 2) * 8, 0};
    int64_t t = 0, delta = 0;
    uint64_t vbits = 0, u;
    int leading = 0, trailing = 0;
    for (long i = 0; i < n; i++) {
        if (i == 0) {
            if (read_uvarint(&r, &u) < 0) return -1;
            t = (int64_t)(u >> 1) ^ -(int64_t)(u & 1); /* zigzag */
            if (read_bits(&r, 64, &vbits) < 0) return -1;
        } else if (i == 1) {
            if (read_uvarint(&r, &u) < 0) return -1;
            delta = (int64_t)u;
            t += delta;
            if (read_value(&r, &vbits, &leading, &trailing) < 0) return -1;
        } else {
            int d = 0;
            uint64_t bit;
            while (d < 4) {
                if (read_bits(&r, 1, &bit) < 0) return -1;
                if (bit == 0) break;
                d++;
            }
            int64_t dod = 0;
            if (d == 4) {
                if (read_bits(&r, 64, &u) < 0) return -1;
                dod = (int64_t)u;
            } else if (d > 0) {
                int sz = d == 1 ? 14 : d == 2 ? 17 : 20;
                if (read_bits(&r, sz, &u) < 0) return -1;
                if (u > ((uint64_t)1 << (sz - 1))) u -= (uint64_t)1 << sz;
                dod = (int64_t)u;
            }
            delta += dod;
            t += delta;
            if (read_value(&r, &vbits, &leading, &trailing) < 0) return -1;
        }
        ts[i] = t;
        memcpy(&vs[i], &vbits, sizeof(double));
    }
    return n;
}

/* Every chunk of one series at once: chunk i is data[offs[i] : offs[i] + lens[i]]. Returns the samples
 * written (at most cap), or -1 on a malformed chunk. */
long zw_decode_many(const uint8_t *data, const int64_t *offs, const int64_t *lens, long nchunks, int64_t *ts,
                    double *vs, long cap) {
    long total = 0;
    for (long i = 0; i < nchunks; i++) {
        long n = zw_decode_xor(data + offs[i], (size_t)lens[i], ts + total, vs + total, cap - total);
        if (n < 0) return -1;
        total += n;
    }
    return total;
}
