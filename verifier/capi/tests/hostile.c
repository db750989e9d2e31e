/*
 * hostile.c: hostile calls into the tessera C API, under AddressSanitizer and
 * UndefinedBehaviorSanitizer (.ci/fw-capi.sh):
 *
 *   gcc -std=c99 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
 *       -I verifier/capi/include verifier/capi/tests/hostile.c \
 *       libtessera_verifier_capi.a -lpthread -ldl -lm -o hostile
 *   ./hostile spec/vectors/typical.lic
 *
 * Every call is one the header documents an answer for: NULL pointers, short,
 * long, overlapping and misaligned buffers, lengths that wrap, hand-made and
 * altered decisions, bad keyrings and identities, failing signers. Each
 * checks the status and exactly what the call wrote (canary bytes around
 * every output). Exit status 0 when every call behaves as documented.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tessera.h"

static unsigned calls, failures;

#define CHECK(call, expected)                                                              \
    do {                                                                                   \
        int32_t got_ = (call);                                                             \
        calls++;                                                                           \
        if (got_ != (expected)) {                                                          \
            failures++;                                                                    \
            fprintf(stderr, "%s:%d: %s\n  returned %s, expected %s\n", __FILE__, __LINE__, \
                    #call, tessera_status_code(got_), tessera_status_code(expected));     \
        }                                                                                  \
    } while (0)

#define EXPECT(cond)                                                                       \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            failures++;                                                                    \
            fprintf(stderr, "%s:%d: not true: %s\n", __FILE__, __LINE__, #cond);          \
        }                                                                                  \
    } while (0)

/* Test key 1 of spec/vectors/keys.json (RFC 8032 section 7.1 TEST 1). */
static const struct tessera_key_entry KEY1 = {
    {0x21, 0xfe, 0x31, 0xdf, 0xa1, 0x54, 0xa2, 0x61},
    {0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
     0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a},
    1735689600,
    INT64_MAX,
    0};

static const int64_t NOW = 1767225600 + 3600; /* an hour into the typical license */

static char armored[TESSERA_MAX_ARMOR_LEN + 1];
static size_t armored_len;
static uint8_t license[TESSERA_MAX_LICENSE_LEN];
static size_t license_len;

/* The sample appliance of spec/vectors (after its first activation). */
static const char SW[] = "SW-2026-000123";
static const char HW[] = " hw-7f3a-0042\n";
static const char MAC[] = "00:16:3E:5A:1B:2C";
static const char UUID[] = "{4C4C4544-0042-3510-8056-B4C04F4E3232}";
static const char DISK[] = "  S3Z9NB0K123456  ";
static struct tessera_component components[3];

static struct tessera_identity sample_identity(void)
{
    struct tessera_identity id;
    components[0].kind = TESSERA_KIND_NIC_MAC;
    components[0].value = (const uint8_t *)MAC;
    components[0].value_len = strlen(MAC);
    components[1].kind = TESSERA_KIND_SYSTEM_UUID;
    components[1].value = (const uint8_t *)UUID;
    components[1].value_len = strlen(UUID);
    components[2].kind = TESSERA_KIND_DISK_SERIAL;
    components[2].value = (const uint8_t *)DISK;
    components[2].value_len = strlen(DISK);
    memset(&id, 0, sizeof id);
    id.sw_serial = SW;
    id.sw_serial_len = strlen(SW);
    id.hw_serial = HW;
    id.hw_serial_len = strlen(HW);
    id.components = components;
    id.components_len = 3;
    return id;
}

static int all(const void *p, int byte, size_t n)
{
    const uint8_t *b = (const uint8_t *)p;
    size_t i;
    for (i = 0; i < n; i++)
        if (b[i] != (uint8_t)byte) return 0;
    return 1;
}

static int32_t fresh_state(uint8_t state[TESSERA_STATE_LEN])
{
    return tessera_state_new(state, TESSERA_STATE_LEN);
}

/* A decision full of a canary byte: what a call writes stands out. */
static struct tessera_decision stamped;
static struct tessera_decision decision;

static void stamp(struct tessera_decision *d) { memset(d, 0x5a, sizeof *d); }

static int verify(struct tessera_decision *d, uint8_t *state)
{
    struct tessera_identity id = sample_identity();
    return tessera_verify(license, license_len, &KEY1, 1, &id, NOW, state, TESSERA_STATE_LEN, d);
}

static void null_pointers(void)
{
    struct tessera_identity id = sample_identity();
    uint8_t state[TESSERA_STATE_LEN];
    size_t n = 7;
    uint64_t users = 7;
    CHECK(fresh_state(state), TESSERA_OK);
    stamp(&decision);
    CHECK(tessera_verify(NULL, license_len, &KEY1, 1, &id, NOW, state, sizeof state, &decision), TESSERA_E_NULL);
    CHECK(tessera_verify(license, license_len, NULL, 1, &id, NOW, state, sizeof state, &decision), TESSERA_E_NULL);
    CHECK(tessera_verify(license, license_len, &KEY1, 1, NULL, NOW, state, sizeof state, &decision), TESSERA_E_NULL);
    CHECK(tessera_verify(license, license_len, &KEY1, 1, &id, NOW, NULL, sizeof state, &decision), TESSERA_E_NULL);
    CHECK(tessera_verify(license, license_len, &KEY1, 1, &id, NOW, NULL, 0, &decision), TESSERA_E_NULL);
    CHECK(tessera_verify(license, license_len, &KEY1, 1, &id, NOW, state, sizeof state, NULL), TESSERA_E_NULL);
    CHECK(tessera_verify(license, 0, &KEY1, 1, &id, NOW, state, sizeof state, NULL), TESSERA_E_NULL);
    EXPECT(memcmp(&decision, &stamped, sizeof decision) == 0);
    CHECK(tessera_decode_license(NULL, 0, &KEY1, 1, &decision), TESSERA_E_NULL);
    CHECK(tessera_decode_license(license, license_len, NULL, 0, &decision), TESSERA_E_NULL);
    CHECK(tessera_decode_license(license, license_len, &KEY1, 1, NULL), TESSERA_E_NULL);
    EXPECT(memcmp(&decision, &stamped, sizeof decision) == 0);
    CHECK(tessera_armor_decode(NULL, 10, license, sizeof license, &n), TESSERA_E_NULL);
    CHECK(tessera_armor_decode(armored, armored_len, NULL, 0, &n), TESSERA_E_NULL);
    CHECK(tessera_armor_decode(armored, armored_len, license, sizeof license, NULL), TESSERA_E_NULL);
    EXPECT(n == 7);
    CHECK(tessera_state_new(NULL, TESSERA_STATE_LEN), TESSERA_E_NULL);
    CHECK(tessera_state_new(NULL, 3), TESSERA_E_NULL);
    CHECK(tessera_state_recovery(NOW, NULL, TESSERA_STATE_LEN), TESSERA_E_NULL);
    CHECK(tessera_state_select(NULL, 64, state, 64, state, 64), TESSERA_E_NULL);
    CHECK(tessera_total_users(NULL, &users), TESSERA_E_NULL);
    CHECK(tessera_total_users(&decision, NULL), TESSERA_E_NULL);
    CHECK(tessera_profile_count(NULL, 1, NULL), TESSERA_E_NULL);
    CHECK(tessera_feature(NULL, 1, NULL), TESSERA_E_NULL);
    CHECK(tessera_service_at(NULL, 0, NULL), TESSERA_E_NULL);
    CHECK(tessera_sharing(NULL, NULL, NULL, 0), TESSERA_E_NULL);
    CHECK(tessera_armor_encode(NULL, 5, TESSERA_ARMOR_LICENSE, armored, sizeof armored, &n), TESSERA_E_NULL);
    CHECK(tessera_ed25519_sign(NULL, license, 3, license), TESSERA_E_NULL);
    CHECK(tessera_ed25519_public_key(license, NULL), TESSERA_E_NULL);
    EXPECT(users == 7);
    /* A component with a NULL value, even of length 0. */
    components[1].value = NULL;
    components[1].value_len = 0;
    CHECK(tessera_verify(license, license_len, &KEY1, 1, &id, NOW, state, sizeof state, &decision), TESSERA_E_NULL);
    EXPECT(memcmp(&decision, &stamped, sizeof decision) == 0);
}

static void lengths(void)
{
    struct tessera_identity id = sample_identity();
    uint8_t big[256];
    size_t lens[] = {0, 1, 63, 65, 256};
    size_t i;
    for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        memset(big, 0x33, sizeof big);
        stamp(&decision);
        CHECK(tessera_verify(license, license_len, &KEY1, 1, &id, NOW, big, lens[i], &decision), TESSERA_E_BUFFER);
        EXPECT(memcmp(&decision, &stamped, sizeof decision) == 0);
        EXPECT(all(big, 0x33, sizeof big));
        CHECK(tessera_state_new(big, lens[i]), TESSERA_E_BUFFER);
        CHECK(tessera_state_recovery(NOW, big, lens[i]), TESSERA_E_BUFFER);
        EXPECT(all(big, 0x33, sizeof big));
    }
    /* A length that wraps the address space: refused, nothing read. */
    CHECK(tessera_verify(license, SIZE_MAX, &KEY1, 1, &id, NOW, big, TESSERA_STATE_LEN, &decision), TESSERA_E_ARGUMENT);
    /* (Outputs on the stack, far from the statics a declared gigabyte
     * would otherwise overlap: that is TESSERA_E_ARGUMENT.) */
    {
        char small[8];
        struct tessera_decision *local = malloc(sizeof *local);
        const size_t gib = (size_t)1 << 30;
        /* A license length over the cap: refused unread (no license). */
        stamp(local);
        CHECK(tessera_decode_license(license, gib, &KEY1, 1, local), TESSERA_E_MALFORMED_TOO_LARGE);
        EXPECT(local->verdict == TESSERA_VERDICT_NONE && local->license_len == 0);
        CHECK(tessera_armor_encode(license, gib, TESSERA_ARMOR_LICENSE, small, sizeof small, &i), TESSERA_E_ARMOR_TOO_LARGE);
        EXPECT(all(small, 0, sizeof small));
        CHECK(tessera_armor_encode(license, SIZE_MAX / 2, TESSERA_ARMOR_LICENSE, small, sizeof small, &i), TESSERA_E_ARGUMENT);
        /* Identity values: a length over any sane value is refused unread. */
        components[2].value_len = gib;
        CHECK(tessera_verify(license, license_len, &KEY1, 1, &id, NOW, big, TESSERA_STATE_LEN, local), TESSERA_E_IDENTITY_TOO_LONG);
        EXPECT(local->verdict == TESSERA_VERDICT_NONE);
        free(local);
    }
    id = sample_identity();
    id.components_len = SIZE_MAX / 64;
    CHECK(tessera_verify(license, license_len, &KEY1, 1, &id, NOW, big, TESSERA_STATE_LEN, &decision), TESSERA_E_ARGUMENT);
    id = sample_identity();
    CHECK(tessera_armor_decode(armored, SIZE_MAX, license, sizeof license, &i), TESSERA_E_ARGUMENT);
    /* Over the size caps. */
    stamp(&decision);
    {
        static uint8_t huge[TESSERA_MAX_LICENSE_LEN + 1];
        uint8_t state[TESSERA_STATE_LEN];
        CHECK(fresh_state(state), TESSERA_OK);
        memcpy(huge, license, license_len);
        CHECK(tessera_verify(huge, sizeof huge, &KEY1, 1, &id, NOW, state, sizeof state, &decision), TESSERA_E_MALFORMED_TOO_LARGE);
        EXPECT(decision.verdict == TESSERA_VERDICT_NONE && decision.license_len == 0);
    }
}

static void overlaps_and_alignment(void)
{
    struct tessera_identity id = sample_identity();
    static uint8_t both[TESSERA_MAX_LICENSE_LEN + 64];
    static uint64_t words[64];
    uint8_t state[TESSERA_STATE_LEN];
    size_t n = 9;
    CHECK(fresh_state(state), TESSERA_OK);
    /* The state inside the license. */
    memcpy(both, license, license_len);
    CHECK(tessera_verify(both, license_len, &KEY1, 1, &id, NOW, both + 8, TESSERA_STATE_LEN, &decision), TESSERA_E_ARGUMENT);
    /* The license inside the decision the call writes. */
    memcpy(decision.license, license, license_len);
    CHECK(tessera_verify(decision.license, license_len, &KEY1, 1, &id, NOW, state, sizeof state, &decision), TESSERA_E_ARGUMENT);
    /* The state over a component value. */
    components[0].value = state;
    components[0].value_len = 4;
    CHECK(tessera_verify(license, license_len, &KEY1, 1, &id, NOW, state, sizeof state, &decision), TESSERA_E_ARGUMENT);
    id = sample_identity();
    /* out_len inside out; out over the text. */
    CHECK(tessera_armor_decode(armored, armored_len, both, sizeof both, (size_t *)(void *)words), TESSERA_OK);
    CHECK(tessera_armor_decode(armored, armored_len, (uint8_t *)words, sizeof words, (size_t *)(void *)&words[2]), TESSERA_E_ARGUMENT);
    CHECK(tessera_armor_decode(armored, armored_len, (uint8_t *)armored + 10, 600, &n), TESSERA_E_ARGUMENT);
    EXPECT(n == 9);
    /* A keyring and a decision that are not aligned. */
    {
        static uint64_t raw[2 * 8 + 1];
        const struct tessera_key_entry *odd = (const struct tessera_key_entry *)(const void *)((const uint8_t *)raw + 4);
        struct tessera_decision *odd_d = (struct tessera_decision *)(void *)((uint8_t *)&stamped + 4);
        CHECK(tessera_verify(license, license_len, odd, 1, &id, NOW, state, sizeof state, &decision), TESSERA_E_ARGUMENT);
        CHECK(tessera_decode_license(license, license_len, &KEY1, 1, odd_d), TESSERA_E_ARGUMENT);
    }
    CHECK(tessera_state_select(state, 64, state, 64, state, 64), TESSERA_E_ARGUMENT);
}

static void keyrings_and_identities(void)
{
    struct tessera_identity id = sample_identity();
    struct tessera_key_entry ring[TESSERA_MAX_KEYS + 1];
    uint8_t state[TESSERA_STATE_LEN];
    static uint8_t long_value[10000];
    size_t i;
    CHECK(fresh_state(state), TESSERA_OK);
    for (i = 0; i < TESSERA_MAX_KEYS + 1; i++) ring[i] = KEY1;
    stamp(&decision);
    CHECK(tessera_verify(license, license_len, ring, TESSERA_MAX_KEYS + 1, &id, NOW, state, sizeof state, &decision), TESSERA_E_ARGUMENT);
    CHECK(tessera_verify(license, license_len, ring, 0, &id, NOW, state, sizeof state, &decision), TESSERA_E_ARGUMENT);
    CHECK(tessera_verify(license, license_len, ring, 2, &id, NOW, state, sizeof state, &decision), TESSERA_E_DUPLICATE_KID);
    ring[1].retired = 1;
    CHECK(tessera_verify(license, license_len, ring, 2, &id, NOW, state, sizeof state, &decision), TESSERA_E_DUPLICATE_KID);
    ring[0].kid[3] ^= 1;
    CHECK(tessera_verify(license, license_len, ring, 1, &id, NOW, state, sizeof state, &decision), TESSERA_E_ARGUMENT);
    CHECK(tessera_decode_license(license, license_len, ring, 2, &decision), TESSERA_E_ARGUMENT);
    EXPECT(memcmp(&decision, &stamped, sizeof decision) == 0);
    /* Identities: too many components, bad values. */
    id.components_len = TESSERA_MAX_COMPONENTS + 1;
    CHECK(tessera_verify(license, license_len, &KEY1, 1, &id, NOW, state, sizeof state, &decision), TESSERA_E_ARGUMENT);
    id = sample_identity();
    id.sw_serial = "\xff\xfe";
    id.sw_serial_len = 2;
    CHECK(tessera_verify(license, license_len, &KEY1, 1, &id, NOW, state, sizeof state, &decision), TESSERA_E_IDENTITY_INVALID);
    EXPECT(decision.verdict == TESSERA_VERDICT_NONE);
    id = sample_identity();
    memset(long_value, 'A', sizeof long_value);
    components[2].value = long_value;
    components[2].value_len = sizeof long_value;
    CHECK(tessera_verify(license, license_len, &KEY1, 1, &id, NOW, state, sizeof state, &decision), TESSERA_E_IDENTITY_TOO_LONG);
    id = sample_identity();
    components[0].kind = 200;
    CHECK(tessera_verify(license, license_len, &KEY1, 1, &id, NOW, state, sizeof state, &decision), TESSERA_E_IDENTITY_UNKNOWN_KIND);
    id = sample_identity();
    components[0].value = (const uint8_t *)"not a mac";
    components[0].value_len = 9;
    CHECK(tessera_verify(license, license_len, &KEY1, 1, &id, NOW, state, sizeof state, &decision), TESSERA_E_IDENTITY_INVALID);
    /* The state was never touched by any of these. */
    {
        uint8_t fresh[TESSERA_STATE_LEN];
        CHECK(fresh_state(fresh), TESSERA_OK);
        EXPECT(memcmp(state, fresh, sizeof fresh) == 0);
    }
}

static void armor(void)
{
    size_t caps[] = {0, 1, 100, 494};
    static uint8_t out[TESSERA_MAX_LICENSE_LEN + 16];
    static char text[1024];
    size_t i, n = 5, t;
    for (i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        memset(out, 0x5a, sizeof out);
        n = 5;
        CHECK(tessera_armor_decode(armored, armored_len, out, caps[i], &n), TESSERA_E_BUFFER);
        EXPECT(n == 0 && all(out, 0, caps[i]) && all(out + caps[i], 0x5a, 16));
    }
    memset(out, 0x5a, sizeof out);
    CHECK(tessera_armor_decode(armored, armored_len, out, 495, &n), TESSERA_OK);
    EXPECT(n == 495 && memcmp(out, license, 495) == 0 && all(out + 495, 0x5a, 16));
    CHECK(tessera_armor_decode("\xff\xfe", 2, out, sizeof out, &n), TESSERA_E_ARGUMENT);
    CHECK(tessera_armor_decode("nothing here", 12, out, sizeof out, &n), TESSERA_E_ARMOR_MISSING_BEGIN);
    EXPECT(n == 0 && all(out, 0, sizeof out));
    /* Armor out, and back in. */
    CHECK(tessera_armor_encode(license, license_len, TESSERA_ARMOR_LICENSE, text, sizeof text, &t), TESSERA_OK);
    EXPECT(t == armored_len && memcmp(text, armored, t) == 0 && text[t] == 0);
    memset(text, 0x5a, sizeof text);
    CHECK(tessera_armor_encode(license, license_len, TESSERA_ARMOR_LICENSE, text, armored_len, &t), TESSERA_E_BUFFER);
    EXPECT(t == 0 && all(text, 0, armored_len) && all(text + armored_len, 0x5a, 8));
    CHECK(tessera_armor_encode(license, license_len, 2, text, sizeof text, &t), TESSERA_E_ARGUMENT);
    CHECK(tessera_armor_encode(license, TESSERA_MAX_LICENSE_LEN + 1, TESSERA_ARMOR_LICENSE, text, sizeof text, &t), TESSERA_E_ARMOR_TOO_LARGE);
}

static void decisions(void)
{
    uint8_t state[TESSERA_STATE_LEN];
    uint64_t users = 7;
    uint16_t code = 7;
    uint32_t count = 7;
    int32_t role = 7;
    char server[4];
    struct tessera_feature f;
    struct tessera_service sv;
    static struct tessera_decision forged;
    CHECK(fresh_state(state), TESSERA_OK);
    CHECK(verify(&decision, state), TESSERA_OK);
    CHECK(tessera_total_users(&decision, &users), TESSERA_OK);
    EXPECT(users == 52);
    /* Never filled: zeros, as a C static is. */
    memset(&forged, 0, sizeof forged);
    CHECK(tessera_total_users(&forged, &users), TESSERA_E_DECISION);
    /* Filled by hand: a license copied in, verdict VALID. */
    memcpy(forged.license, license, license_len);
    forged.license_len = (uint32_t)license_len;
    forged.verdict = TESSERA_VERDICT_VALID;
    forged.full_service = 1;
    users = 7;
    CHECK(tessera_total_users(&forged, &users), TESSERA_E_DECISION);
    CHECK(tessera_profile_count(&forged, 1, &count), TESSERA_E_DECISION);
    CHECK(tessera_feature_at(&forged, 0, &f), TESSERA_E_DECISION);
    CHECK(tessera_service_at(&forged, 0, &sv), TESSERA_E_DECISION);
    CHECK(tessera_sharing(&forged, &role, server, sizeof server), TESSERA_E_DECISION);
    EXPECT(users == 7 && count == 7 && role == 7);
    /* Verified, then changed: an expired decision made to look valid, one
     * license byte changed. */
    forged = decision;
    forged.verdict = TESSERA_VERDICT_GRACE;
    CHECK(tessera_total_users(&forged, &users), TESSERA_E_DECISION);
    forged = decision;
    forged.license[200] ^= 1;
    CHECK(tessera_base_count(&forged, 4, &count), TESSERA_E_DECISION);
    forged = decision;
    forged.license_len = 4096;
    CHECK(tessera_storage_units(&forged, &count), TESSERA_E_DECISION);
    /* All outputs or none. */
    CHECK(tessera_profile_at(&decision, 6, &code, &count), TESSERA_E_NOT_FOUND);
    EXPECT(code == 7 && count == 7);
    CHECK(tessera_profile_at(&decision, 0, &code, NULL), TESSERA_E_NULL);
    EXPECT(code == 7);
    CHECK(tessera_profile_at(&decision, 0, &code, (uint32_t *)(void *)&code), TESSERA_E_ARGUMENT);
    CHECK(tessera_profile_at(&decision, 0, &code, &count), TESSERA_OK);
    EXPECT(code == 1 && count == 20);
    memset(server, 0x5a, sizeof server);
    CHECK(tessera_sharing(&decision, &role, server, 0), TESSERA_E_BUFFER);
    EXPECT(role == 7 && all(server, 0x5a, sizeof server));
    CHECK(tessera_sharing(&decision, &role, server, sizeof server), TESSERA_OK);
    EXPECT(role == TESSERA_ROLE_STANDALONE && all(server, 0, sizeof server));
    CHECK(tessera_sharing(&decision, &role, NULL, 0), TESSERA_OK);
    CHECK(tessera_feature(&decision, 500, &f), TESSERA_OK);
    EXPECT(f.licensed == 0 && f.code == 500);
    CHECK(tessera_service_at(&decision, 99, &sv), TESSERA_E_NOT_FOUND);
    /* A decoded license (no verdict): queries grant nothing. */
    CHECK(tessera_decode_license(license, license_len, &KEY1, 1, &forged), TESSERA_OK);
    CHECK(tessera_total_users(&forged, &users), TESSERA_E_NO_SERVICE);
}

static int32_t failing_signer(void *ctx, const uint8_t *m, size_t n, uint8_t *sig)
{
    (void)ctx;
    (void)m;
    (void)n;
    (void)sig;
    return 17;
}

static int32_t garbage_signer(void *ctx, const uint8_t *m, size_t n, uint8_t *sig)
{
    (void)ctx;
    (void)m;
    (void)n;
    memset(sig, 0xab, 64);
    return 0;
}

static int32_t seed_signer(void *ctx, const uint8_t *m, size_t n, uint8_t *sig)
{
    return tessera_ed25519_sign((const uint8_t *)ctx, m, n, sig);
}

static void requests(void)
{
    struct tessera_identity id = sample_identity();
    struct tessera_request_params params;
    static uint8_t seed[32] = {7};
    static uint8_t out[TESSERA_MAX_REQUEST_LEN + 16];
    uint8_t state[TESSERA_STATE_LEN];
    static struct tessera_decision hand;
    size_t n = 5;
    CHECK(fresh_state(state), TESSERA_OK);
    memset(&params, 0, sizeof params);
    params.created_at = NOW;
    memset(params.nonce, 1, sizeof params.nonce);
    memset(params.salt, 2, sizeof params.salt);
    CHECK(tessera_ed25519_public_key(seed, params.device_key), TESSERA_OK);

    CHECK(tessera_request_encode(&id, state, sizeof state, NULL, &params, seed_signer, seed, out, TESSERA_MAX_REQUEST_LEN, &n), TESSERA_OK);
    EXPECT(n > 0 && n <= TESSERA_MAX_REQUEST_LEN);
    memset(out, 0x5a, sizeof out);
    n = 5;
    CHECK(tessera_request_encode(&id, state, sizeof state, NULL, &params, NULL, seed, out, sizeof out, &n), TESSERA_E_NULL);
    CHECK(tessera_request_encode(&id, state, 63, NULL, &params, seed_signer, seed, out, sizeof out, &n), TESSERA_E_BUFFER);
    CHECK(tessera_request_encode(NULL, state, sizeof state, NULL, &params, seed_signer, seed, out, sizeof out, &n), TESSERA_E_NULL);
    CHECK(tessera_request_encode(&id, state, sizeof state, NULL, NULL, seed_signer, seed, out, sizeof out, &n), TESSERA_E_NULL);
    CHECK(tessera_request_encode(&id, state, sizeof state, NULL, &params, seed_signer, seed, out, sizeof out, NULL), TESSERA_E_NULL);
    params.platform = 9;
    CHECK(tessera_request_encode(&id, state, sizeof state, NULL, &params, seed_signer, seed, out, sizeof out, &n), TESSERA_E_ARGUMENT);
    params.platform = 0;
    CHECK(tessera_request_encode(&id, state, sizeof state, NULL, &params, seed_signer, seed, state, sizeof state, &n), TESSERA_E_ARGUMENT);
    EXPECT(n == 5 && all(out, 0x5a, sizeof out));
    /* Errors after the arguments are checked: the buffer is cleared. */
    CHECK(tessera_request_encode(&id, state, sizeof state, NULL, &params, failing_signer, NULL, out, TESSERA_MAX_REQUEST_LEN, &n), TESSERA_E_SIGNER);
    EXPECT(n == 0 && all(out, 0, TESSERA_MAX_REQUEST_LEN) && all(out + TESSERA_MAX_REQUEST_LEN, 0x5a, 16));
    CHECK(tessera_request_encode(&id, state, sizeof state, NULL, &params, garbage_signer, NULL, out, TESSERA_MAX_REQUEST_LEN, &n), TESSERA_E_SIGNER);
    EXPECT(n == 0 && all(out, 0, TESSERA_MAX_REQUEST_LEN));
    memset(out, 0x5a, sizeof out);
    CHECK(tessera_request_encode(&id, state, sizeof state, NULL, &params, seed_signer, seed, out, 100, &n), TESSERA_E_BUFFER);
    EXPECT(n == 0 && all(out, 0, 100) && all(out + 100, 0x5a, 16));
    memset(&hand, 0, sizeof hand);
    CHECK(tessera_request_encode(&id, state, sizeof state, &hand, &params, seed_signer, seed, out, sizeof out, &n), TESSERA_E_DECISION);
    state[9] ^= 1;
    CHECK(tessera_request_encode(&id, state, sizeof state, NULL, &params, seed_signer, seed, out, sizeof out, &n), TESSERA_E_STATE_CORRUPT);
}

int main(int argc, char **argv)
{
    FILE *f;
    if (argc != 2) {
        fprintf(stderr, "usage: hostile <spec/vectors/typical.lic>\n");
        return 2;
    }
    f = fopen(argv[1], "rb");
    if (f == NULL) {
        perror(argv[1]);
        return 2;
    }
    armored_len = fread(armored, 1, sizeof armored - 1, f);
    fclose(f);
    CHECK(tessera_armor_decode(armored, armored_len, license, sizeof license, &license_len), TESSERA_OK);
    stamp(&stamped);

    null_pointers();
    lengths();
    overlaps_and_alignment();
    keyrings_and_identities();
    armor();
    decisions();
    requests();

    if (failures) {
        fprintf(stderr, "%u of %u hostile calls did not answer as documented\n", failures, calls);
        return 1;
    }
    printf("%u hostile calls, each answered as tessera.h documents (ASan/UBSan clean)\n", calls);
    return 0;
}
